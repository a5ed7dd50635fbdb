package replay

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lvslab/lvslab/scheduler"
)

var update = flag.Bool("update", false, "rewrite the golden outputs of testdata/kipvs/lvslab (never the kernel's samples)")

const kernelDir = "../../testdata/kipvs"

func replayFile(t *testing.T, path string, profile scheduler.Profile) []string {
	t.Helper()
	text, err := os.ReadFile(path)
	require.NoError(t, err)
	sc, err := Parse(filepath.Base(path), string(text))
	require.NoError(t, err)
	var out bytes.Buffer
	require.NoError(t, Run(sc, Options{Profile: profile}, &out))
	return strings.SplitAfter(out.String(), "\n")
}

// TestKernelSamples replays every scenario the real kernel ran (kipvs
// samples) and compares the whole output but the kernel-name line: the
// decision lines, every listing including the packet and byte counters.
func TestKernelSamples(t *testing.T) {
	scns, err := filepath.Glob(filepath.Join(kernelDir, "*.scn"))
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(scns), 25)
	for _, scn := range scns {
		name := strings.TrimSuffix(filepath.Base(scn), ".scn")
		t.Run(name, func(t *testing.T) {
			want, err := os.ReadFile(strings.TrimSuffix(scn, ".scn") + ".out")
			require.NoError(t, err)
			got := replayFile(t, scn, scheduler.ProfileCurrent)
			assert.Equal(t, strings.SplitAfter(string(want), "\n")[1:], got[1:])
		})
	}
}

// TestOwnGoldens replays lvslab's own cases: scenarios under
// testdata/kipvs/lvslab, each with the profile its name carries
// (NAME.6.1-stock.out) or the current one (NAME.out).
func TestOwnGoldens(t *testing.T) {
	dir := filepath.Join(kernelDir, "lvslab")
	outs, err := filepath.Glob(filepath.Join(dir, "*.out"))
	require.NoError(t, err)
	require.NotEmpty(t, outs)
	for _, out := range outs {
		base := strings.TrimSuffix(filepath.Base(out), ".out")
		scnName, profName, _ := strings.Cut(base, ".")
		profile, ok := scheduler.ParseProfile(profName)
		require.True(t, ok, "profile in %s", out)
		scn := filepath.Join(dir, scnName+".scn")
		if _, err := os.Stat(scn); err != nil {
			scn = filepath.Join(kernelDir, scnName+".scn")
		}
		t.Run(base, func(t *testing.T) {
			got := strings.Join(replayFile(t, scn, profile), "")
			if *update {
				require.NoError(t, os.WriteFile(out, []byte(got), 0o644))
				return
			}
			want, err := os.ReadFile(out)
			require.NoError(t, err)
			assert.Equal(t, strings.SplitAfter(string(want), "\n"), strings.SplitAfter(got, "\n"))
		})
	}
}

func TestParseErrorsNameTheLine(t *testing.T) {
	tests := []struct {
		name, text, want string
	}{
		{"unknown directive", "ipvsadm -A -t 10.0.0.1:80\nfrobnicate\n", "x.scn:2: unknown directive \"frobnicate\""},
		{"bad count", "ipvsadm -A -t 10.0.0.1:80\nconn 10.2.0.1 many\n", "x.scn:2: bad count \"many\""},
		{"conn without a service", "# nothing\nconn 10.2.0.1 1\n", "x.scn:2: no VIP:PORT given and no ipvsadm -A service to default to"},
		{"families mixed", "conn fd00::1 1 10.0.0.1:80\n", "x.scn:1: client fd00::1 and target 10.0.0.1 are of different families"},
		{"pkts without udp", "conn 10.2.0.1 1 10.0.0.1:80 pkts=3\n", "x.scn:1: pkts=N needs udp"},
		{"bad sleep", "sleep soon\n", "x.scn:1: bad duration \"soon\""},
		{"sysctl without value", "sysctl net.ipv4.vs.conntrack\n", "x.scn:1: sysctl KEY=VALUE"},
		{"sh other than ipvsadm", "sh ip netns exec rs1 ss -tn\n", "x.scn:1: sh: a replay runs only an ipvsadm command"},
		{"unsupported nft", "nft add rule ip mangle pre ip daddr 10.0.0.1 counter\n", "x.scn:1: nft: unsupported rule expression at \"counter\""},
		{"unterminated quote", "nft 'add table ip x\n", "x.scn:1: unterminated single quote"},
		{"replies", "replies sideways\n", "x.scn:1: replies direct|director"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("x.scn", tt.text)
			require.Error(t, err)
			var pe *Error
			require.True(t, errors.As(err, &pe))
			assert.True(t, strings.HasPrefix(err.Error(), tt.want), "%q", err.Error())
		})
	}
}

// FuzzParse: no input makes Parse panic, and what parses also replays.
func FuzzParse(f *testing.F) {
	scns, _ := filepath.Glob(filepath.Join(kernelDir, "*.scn"))
	for _, scn := range scns[:min(len(scns), 6)] {
		b, _ := os.ReadFile(scn)
		f.Add(string(b))
	}
	f.Add("conn 10.2.0.1 1 [fd00::1]:80 udp pkts=2 gap=0.5\nsleep 1e9\n")
	f.Fuzz(func(t *testing.T, text string) {
		sc, err := Parse("fuzz.scn", text)
		if err != nil || sc.Timeout > time.Hour {
			return // a long timeout lets held connections keepalive for years
		}
		for _, st := range sc.Steps {
			if st.Verb == "sh" || st.Verb == "conn" && st.Conn.Count*st.Conn.Pkts > 1000 {
				return // external commands; huge traffic
			}
		}
		var out bytes.Buffer
		_ = Run(sc, Options{}, &out)
	})
}

func TestTimeoutIsOnTheVirtualClock(t *testing.T) {
	sc, err := Parse("t.scn", "timeout 10\nsleep 6\nsleep 6\necho never\n")
	require.NoError(t, err)
	var out bytes.Buffer
	err = Run(sc, Options{}, &out)
	require.EqualError(t, err, "t.scn:3: scenario timed out after 10s")
	assert.Contains(t, out.String(), "#ERROR scenario timed out after 10s")
	assert.NotContains(t, out.String(), "never")
}
