package main

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lvslab/lvslab/dataplane/engine"
)

// lvslab stats reads a running director's engine counters: a table, or
// the JSON the run report carries.
func TestStatsOfALab(t *testing.T) {
	runDir := t.TempDir()
	upLab(t, runDir, "nat", "classic-nat")

	out, err := run(t, runDir, "stats", "--lab", "classic-nat")
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

	// --listen: Prometheus metrics from the root namespace, on loopback.
	srv := exec.Command(lvslab(t), "stats", "--lab", "classic-nat", "--listen", "127.0.0.1:0")
	srv.Env = append(srv.Environ(), "LVSLAB_RUN_DIR="+runDir)
	stdout, err := srv.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, srv.Start())
	defer func() {
		srv.Process.Signal(syscall.SIGTERM)
		assert.NoError(t, srv.Wait(), "stops cleanly when interrupted")
	}()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	require.NoError(t, err)
	url := line[strings.Index(line, "http://"):]
	resp, err := http.Get(strings.TrimSpace(url))
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	assert.Contains(t, string(body), `lvslab_director_up{director="director"} 1`)
	assert.Contains(t, string(body), `lvslab_director_packets_total{counter="frames",director="director"}`)

	_, err = run(t, runDir, "stats")
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee)
	assert.Equal(t, 2, ee.ExitCode(), "--lab is required")
	out, err = run(t, runDir, "stats", "--lab", "classic-nat", "--director", "rs1")
	require.Error(t, err)
	assert.Contains(t, out, "rs1")
}
