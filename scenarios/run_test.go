package scenarios

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lvslab/lvslab/topo"
	"github.com/lvslab/lvslab/topo/agent"
)

// TestMain lets the test binary serve as its own agent executable.
func TestMain(m *testing.M) {
	agent.MainIfAgent()
	os.Exit(m.Run())
}

// testScale shortens every example's timeline in tests.
const testScale = 0.15

func needLabs(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("builds labs; skipped with -short")
	}
	if os.Geteuid() != 0 {
		t.Skip("building labs needs root (network namespaces)")
	}
}

// requireNothingLeft proves the run removed its lab: no registry entry and
// no namespace with the lab's ID.
func requireNothingLeft(t *testing.T, runDir, lab string) {
	t.Helper()
	labs, err := topo.List(runDir)
	require.NoError(t, err)
	assert.Empty(t, labs)
	out, err := exec.Command("ip", "netns", "list").Output()
	require.NoError(t, err)
	if lab != "" {
		assert.NotContains(t, string(out), lab)
	}
}

// TestExamplesRunGreen runs every example that has a load, at a fraction
// of its length: each must pass its own expectations and leave nothing.
func TestExamplesRunGreen(t *testing.T) {
	needLabs(t)
	entries, err := Examples.ReadDir("examples")
	require.NoError(t, err)
	for _, e := range entries {
		name := strings.TrimSuffix(e.Name(), ".yaml")
		s, err := LoadExample(name)
		require.NoError(t, err)
		if len(s.Load) == 0 {
			continue
		}
		t.Run(name, func(t *testing.T) {
			runDir := t.TempDir()
			rep, err := s.Run(context.Background(), RunOptions{Scale: testScale, Seed: 1, RunDir: runDir})
			require.NoError(t, err)
			for _, x := range rep.Expectations {
				assert.True(t, x.Passed, "%s: measured %g %s", x.Text, x.Value, x.Detail)
			}
			assert.True(t, rep.Passed)
			require.NotNil(t, rep.Load)
			assert.NotZero(t, rep.Load.Requests)
			assert.Len(t, rep.Services, len(s.Services))
			assert.Len(t, rep.Faults, len(s.Faults))
			assert.NotEmpty(t, rep.Manifest["lab"])
			requireNothingLeft(t, runDir, rep.Manifest["lab"])
		})
	}
}

// TestInterruptedRunLeavesNothing cancels a run in the middle of its load,
// as Ctrl-C does.
func TestInterruptedRunLeavesNothing(t *testing.T) {
	needLabs(t)
	s, err := LoadExample("quickstart")
	require.NoError(t, err)
	runDir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	var progress strings.Builder
	pr, pw, err := os.Pipe()
	require.NoError(t, err)
	go func() {
		// cancel once the timeline has started
		buf := make([]byte, 4096)
		for {
			n, err := pr.Read(buf)
			progress.Write(buf[:n])
			if strings.Contains(progress.String(), "timeline starts") {
				time.AfterFunc(500*time.Millisecond, cancel)
			}
			if err != nil {
				return
			}
		}
	}()
	_, err = s.Run(ctx, RunOptions{Scale: 1, RunDir: runDir, Progress: pw})
	pw.Close()
	require.ErrorIs(t, err, context.Canceled)
	requireNothingLeft(t, runDir, "")
}
