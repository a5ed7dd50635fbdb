package main

import (
	"encoding/json"
	"os/exec"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lvslab/lvslab/dataplane/engine"
)

// lvslab stats reads a running director's engine counters: a table, or
// the JSON the run report carries.
func TestStatsOfALab(t *testing.T) {
	runDir := t.TempDir()
	out, err := run(t, runDir, "up", "nat")
	require.NoError(t, err, out)
	inos := owned(t, runDir)
	defer func() {
		out, err := run(t, runDir, "down", "classic-nat")
		require.NoError(t, err, out)
		assertNothingLeft(t, runDir, inos)
	}()

	out, err = run(t, runDir, "stats", "--lab", "classic-nat")
	require.NoError(t, err, out)
	for _, title := range []string{"ENGINE", "frames received", "PARSED", "REASSEMBLY", "DROPPED", "INTERFACE"} {
		assert.Contains(t, out, title)
	}

	out, err = run(t, runDir, "stats", "--lab", "classic-nat", "--director", "director", "--json")
	require.NoError(t, err, out)
	var s engine.Stats
	require.NoError(t, json.Unmarshal([]byte(out), &s), out)
	require.NotEmpty(t, s.Interfaces, "one row per interface the engine forwards on")
	for _, ifc := range s.Interfaces {
		assert.NotEmpty(t, ifc.Name)
	}

	_, err = run(t, runDir, "stats")
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee)
	assert.Equal(t, 2, ee.ExitCode(), "--lab is required")
	out, err = run(t, runDir, "stats", "--lab", "classic-nat", "--director", "rs1")
	require.Error(t, err)
	assert.Contains(t, out, "rs1")
}
