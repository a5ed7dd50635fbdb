package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lvslab/lvslab/topo"
)

func procExit(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

// TestRunWritesTheReportAndExitsByTheExpectations: a passing run exits 0
// with the report set and its manifest; a failing expectation exits 1 with
// the report still written; nothing is left either way.
func TestRunWritesTheReportAndExitsByTheExpectations(t *testing.T) {
	runDir := t.TempDir()
	t.Setenv("LVSLAB_DURATION_SCALE", "0.1")
	out := filepath.Join(t.TempDir(), "qs")
	text, err := run(t, runDir, "run", "quickstart", "--out", out, "--seed", "7")
	require.NoError(t, err, text)
	var rep struct {
		Passed   bool              `json:"passed"`
		Manifest map[string]string `json:"manifest"`
	}
	b, err := os.ReadFile(filepath.Join(out, "report.json"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &rep))
	assert.True(t, rep.Passed)
	assert.Equal(t, "7", rep.Manifest["seed"])
	assert.Len(t, rep.Manifest["scenario_sha256"], 64)
	assert.FileExists(t, filepath.Join(out, "report.md"))
	assert.FileExists(t, filepath.Join(out, "report.html"))

	src, err := exec.Command(lvslab(t), "examples", "quickstart").Output()
	require.NoError(t, err)
	failing := filepath.Join(t.TempDir(), "failing.yaml")
	require.NoError(t, os.WriteFile(failing, append(src, "  - requests > 1000000000\n"...), 0o644))
	text, err = run(t, runDir, "run", failing, "--out", filepath.Join(t.TempDir(), "f"))
	assert.Equal(t, 1, procExit(err), text)
	assert.Contains(t, text, "FAIL requests > 1000000000")
	labs, err := topo.List(runDir)
	require.NoError(t, err)
	assert.Empty(t, labs)
}

// TestRunInterruptedLeavesNothing sends SIGINT (Ctrl-C) in the middle of
// the load.
func TestRunInterruptedLeavesNothing(t *testing.T) {
	runDir := t.TempDir()
	cmd := exec.Command(lvslab(t), "run", "quickstart", "--out", t.TempDir())
	cmd.Env = append(os.Environ(), "LVSLAB_RUN_DIR="+runDir)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		if strings.Contains(sc.Text(), "load phase") {
			require.NoError(t, cmd.Process.Signal(syscall.SIGINT))
			break
		}
	}
	for sc.Scan() {
	}
	assert.Equal(t, 130, procExit(cmd.Wait()))
	labs, err := topo.List(runDir)
	require.NoError(t, err)
	assert.Empty(t, labs)
}

// TestBrokenScenarioBuildsNothing: validate and run name every problem at
// its place and build nothing.
func TestBrokenScenarioBuildsNothing(t *testing.T) {
	runDir := t.TempDir()
	src, err := exec.Command(lvslab(t), "examples", "quickstart").Output()
	require.NoError(t, err)
	broken := filepath.Join(t.TempDir(), "broken.yaml")
	s := strings.Replace(string(src), "rate: 200/s", "rate: lots", 1)
	s = strings.Replace(s, "- errors < 1%", "- errors < lots", 1)
	require.NoError(t, os.WriteFile(broken, []byte(s), 0o644))
	for _, cmd := range []string{"validate", "run"} {
		text, err := run(t, runDir, cmd, broken)
		assert.NotEqual(t, 0, procExit(err), text)
		assert.Contains(t, text, broken+`:47:11: load phase "steady": rate "lots" is not a rate like 2000/s`)
		assert.Contains(t, text, broken+`:54:5: expectation "errors < lots": "lots" is not a number`)
		labs, err := topo.List(runDir)
		require.NoError(t, err)
		assert.Empty(t, labs)
	}
	text, err := run(t, runDir, "validate", "quickstart")
	require.NoError(t, err, text)
	assert.Contains(t, text, "quickstart: ok (5 nodes, 1 services, 1 load phases, 1 faults, 5 expectations)")
}

// TestRunSIGKILLThenDestroyAll kills `lvslab run` at each step it reports
// (building the lab, starting the director and the servers, during the
// load, reading the counters), then proves `destroy --all` leaves nothing:
// an empty registry and run folder, no pinned namespace, no process in a
// lab namespace, and no link or nftables table of the lab's in the root
// namespace.
func TestRunSIGKILLThenDestroyAll(t *testing.T) {
	bin := lvslab(t)
	for _, point := range []struct {
		name, line string
		after      time.Duration
	}{
		{"during the build", "building lab", 150 * time.Millisecond},
		{"starting the servers", "ipvsadm rules loaded", 0},
		{"before the timeline", "real servers serving", 0},
		{"during the load", "timeline starts", 300 * time.Millisecond},
		{"reading the counters", "done:", 0},
	} {
		t.Run(point.name, func(t *testing.T) {
			runDir := t.TempDir()
			cmd := exec.Command(bin, "run", "quickstart", "--out", t.TempDir())
			cmd.Env = append(os.Environ(), "LVSLAB_RUN_DIR="+runDir, "LVSLAB_DURATION_SCALE=0.1")
			stdout, err := cmd.StdoutPipe()
			require.NoError(t, err)
			require.NoError(t, cmd.Start())
			sc := bufio.NewScanner(stdout)
			seen := false
			for !seen && sc.Scan() {
				seen = strings.Contains(sc.Text(), point.line)
			}
			require.True(t, seen, "the run never printed %q", point.line)
			time.Sleep(point.after)
			require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
			go func() {
				for sc.Scan() {
				}
			}()
			assert.Equal(t, -1, procExit(cmd.Wait()), "killed")

			labs, err := topo.List(runDir)
			require.NoError(t, err)
			require.Len(t, labs, 1, "the killed run left its lab for destroy --all")
			id := labs[0].ID
			inos := owned(t, runDir)
			out, err := run(t, runDir, "destroy", "--all")
			require.NoError(t, err, out)
			labs, err = topo.List(runDir)
			require.NoError(t, err)
			assert.Empty(t, labs, "registry")
			assertNothingLeft(t, runDir, inos)
			links, err := exec.Command("ip", "-o", "link", "show").Output()
			require.NoError(t, err)
			assert.NotContains(t, string(links), id, "a link of the lab in the root namespace")
			tables, err := exec.Command("nft", "list", "tables").Output()
			require.NoError(t, err)
			assert.NotContains(t, string(tables), id, "an nftables table of the lab in the root namespace")
		})
	}
}
