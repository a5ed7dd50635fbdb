package reports

import (
	"context"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestWriteAllWritesTheReportSet(t *testing.T) {
	dir := t.TempDir()
	files, err := WriteAll(dir, fixture(t))
	require.NoError(t, err)
	var names []string
	for _, f := range files {
		names = append(names, filepath.Base(f))
	}
	assert.Equal(t, []string{"report.json", "report.md", "report.html", "throughput.png", "latency.png", "cdf.png", "shares.png", "service1-shares.png"}, names)
	for _, f := range files[3:] {
		fh, err := os.Open(f)
		require.NoError(t, err)
		img, err := png.Decode(fh)
		fh.Close()
		require.NoError(t, err, f)
		assert.Greater(t, img.Bounds().Dx(), 300)
	}
	html, err := os.ReadFile(filepath.Join(dir, "report.html"))
	require.NoError(t, err)
	assert.Equal(t, 5, strings.Count(string(html), "<svg"), "every plot is inline")
	assert.NotContains(t, string(html), "<?xml", "the SVG prolog is stripped")
	assert.NotContains(t, string(html), "<script", "self-contained and inert")
	assert.Contains(t, string(html), "hang rs3", "the fault marker is labelled")
	assert.Contains(t, string(html), `<td class="n">0.6</td><td class="n">1</td>`, "readded and recovered after s")
	assert.Contains(t, string(html), "<h2>Health checks</h2>")
}

// TestHTMLInChromium opens report.html in headless Chromium: it must load
// without console errors and render its plots. The screenshot is kept in
// $LVSLAB_ARTIFACTS (or the test's temporary folder) for a person to look at.
func TestHTMLInChromium(t *testing.T) {
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("chromium is not installed (Debian package chromium)")
	}
	if testing.Short() {
		t.Skip("starts a browser")
	}
	dir := t.TempDir()
	_, err = WriteAll(dir, fixture(t))
	require.NoError(t, err)
	out := os.Getenv("LVSLAB_ARTIFACTS")
	if out == "" {
		out = t.TempDir()
	}
	shot := filepath.Join(out, "report-screenshot.png")
	page := "file://" + filepath.Join(dir, "report.html")
	args := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir=" + t.TempDir(), "--enable-logging=stderr", "--v=0"}

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	log, err := exec.CommandContext(ctx, chromium, append(args, "--screenshot="+shot, "--window-size=1280,2400", page)...).CombinedOutput()
	require.NoError(t, err, "%s", log)
	for _, line := range strings.Split(string(log), "\n") {
		assert.NotContains(t, line, "CONSOLE", "a console message from the page: %s", line)
		assert.NotContains(t, line, "Uncaught", line)
	}
	f, err := os.Open(shot)
	require.NoError(t, err)
	defer f.Close()
	img, err := png.Decode(f)
	require.NoError(t, err)
	assert.Equal(t, 1280, img.Bounds().Dx())
	t.Logf("screenshot: %s", shot)

	// The rendered DOM holds every plot as SVG with drawn paths.
	dom, err := exec.CommandContext(ctx, chromium, append(args, "--dump-dom", page)...).Output()
	require.NoError(t, err)
	for _, id := range []string{"throughput", "latency", "cdf", "shares", "service1-shares"} {
		i := strings.Index(string(dom), `id="fig-`+id+`"`)
		require.GreaterOrEqual(t, i, 0, "figure %s is in the DOM", id)
		assert.Contains(t, string(dom[i:]), "<path", "figure %s has drawn paths", id)
	}
	// Plots are coloured: count non-white pixels in the screenshot.
	nonWhite := 0
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y += 4 {
		for x := b.Min.X; x < b.Max.X; x += 4 {
			r, g, bl, _ := img.At(x, y).RGBA()
			if r < 0xf000 || g < 0xf000 || bl < 0xf000 {
				nonWhite++
			}
		}
	}
	assert.Greater(t, nonWhite, 5000, "the page shows plots and tables, not a blank page")
}
