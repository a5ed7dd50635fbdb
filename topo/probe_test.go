package topo_test

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lvslab/lvslab/topo"
)

// TestProbeExplainsEveryFeature: each feature is present, or absent with
// the error that says why; Describe has a line for each and JSON carries
// them under the names bench.json and report.json use.
func TestProbeExplainsEveryFeature(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to probe in a scratch network namespace")
	}
	f := topo.Probe()
	require.NotEmpty(t, f.Kernel)
	b, err := json.Marshal(f)
	require.NoError(t, err)
	var doc map[string]any
	require.NoError(t, json.Unmarshal(b, &doc))
	desc := f.Describe()
	for _, name := range []string{"ipvs", "ipip", "netem", "tbf", "xdp", "nftables", "nfqueue"} {
		present, ok := doc[name].(bool)
		require.True(t, ok, "json key %q in %s", name, b)
		if !present {
			assert.NotEmpty(t, f.Errors[name], "why %s is absent", name)
		}
		assert.Contains(t, desc, "\n"+name+strings.Repeat(" ", 10-len(name)), "a line for %s", name)
	}
}
