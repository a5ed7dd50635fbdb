package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lvslab/lvslab/dataplane/fwdbench"
)

func TestBenchFlagErrorsNameTheFlag(t *testing.T) {
	for _, tc := range []struct {
		args []string
		flag string
	}{
		{[]string{"bench"}, "--out"},
		{[]string{"bench", "--out", "x", "--duration", "1500ms"}, "--duration"},
		{[]string{"bench", "--out", "x", "--duration", "0s"}, "--duration"},
		{[]string{"bench", "--out", "x", "--rounds", "0"}, "--rounds"},
		{[]string{"bench", "--out", "x", "--fixed-pps", "-5"}, "--fixed-pps"},
		{[]string{"bench", "--out", "x", "--udp-len", "9000"}, "--udp-len"},
		{[]string{"bench", "--out", "x", "--dataplanes", "kernel-route,lvs-nat"}, "--dataplanes"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			resetFlags(root)
			root.SetArgs(tc.args)
			err := root.Execute()
			require.Error(t, err)
			assert.True(t, strings.HasPrefix(err.Error(), tc.flag+":"), "%v", err)
			assert.Equal(t, 2, exitCode(err))
		})
	}
}

// TestBenchWritesTheReport runs a tiny bench (two dataplanes, one second
// per load) and checks the table and bench.json's shape; no lab is left.
func TestBenchWritesTheReport(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to build network namespaces (run as root, or in CI)")
	}
	if testing.Short() {
		t.Skip("drives traffic for several seconds")
	}
	if err := fwdbench.CheckPrograms(); err != nil {
		t.Skip(err)
	}
	dir := t.TempDir()
	var stdout, stderr bytes.Buffer
	resetFlags(root)
	root.SetOut(&stdout)
	root.SetErr(&stderr)
	t.Cleanup(func() { root.SetOut(nil); root.SetErr(nil) })
	root.SetArgs([]string{"bench", "--out", dir, "--duration", "1s", "--rounds", "1", "--dataplanes", "kernel-route,lvslab-nat"})
	require.NoError(t, root.Execute(), "%s", stderr.String())
	// Other packages' tests may run benches of their own meanwhile: look for
	// this run's lab only.
	lab := regexp.MustCompile(`lab (lvsbn[0-9a-f]+) `).FindStringSubmatch(stderr.String())
	require.NotNil(t, lab, "the bench names its lab: %s", stderr.String())
	assert.Empty(t, benchNamespaces(t, lab[1]), "namespaces left behind")

	table := stdout.String()
	for _, s := range []string{"× kernel-route", "lvslab-nat", "pps_fixed", "conn/s", filepath.Join(dir, "bench.json")} {
		assert.Contains(t, table, s)
	}
	b, err := os.ReadFile(filepath.Join(dir, "bench.json"))
	require.NoError(t, err)
	var doc struct {
		Machine map[string]any   `json:"machine"`
		Rows    []map[string]any `json:"rows"`
	}
	require.NoError(t, json.Unmarshal(b, &doc))
	for _, k := range []string{"cpus", "kernel", "go", "features"} {
		assert.Contains(t, doc.Machine, k)
	}
	seen := map[string]bool{}
	for _, r := range doc.Rows {
		dp, metric := r["dataplane"].(string), r["metric"].(string)
		seen[dp+" "+metric] = true
		assert.Positive(t, r["value"], "%s %s", dp, metric)
		for _, k := range []string{"loss_percent", "busy_cpu", "loadgen_cpu"} {
			assert.Contains(t, r, k, "%s %s", dp, metric)
		}
		if dp == fwdbench.LvslabNAT {
			assert.Positive(t, r["director_cpu"], "the forwarder's CPU of %s %s", dp, metric)
		}
	}
	for _, dp := range []string{fwdbench.KernelRoute, fwdbench.LvslabNAT} {
		for _, m := range []string{fwdbench.MetricTCP, fwdbench.MetricTCPResp, fwdbench.MetricPPS, fwdbench.MetricPPSFixed, fwdbench.MetricCPS} {
			assert.True(t, seen[dp+" "+m], "row %s %s", dp, m)
		}
	}
	assert.Len(t, doc.Rows, 10)
}

// benchNamespaces lists the namespaces of the bench lab named lab.
func benchNamespaces(t *testing.T, lab string) []string {
	t.Helper()
	ents, err := os.ReadDir("/run/netns")
	if err != nil && !os.IsNotExist(err) {
		require.NoError(t, err)
	}
	var names []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), lab) {
			names = append(names, e.Name())
		}
	}
	return names
}
