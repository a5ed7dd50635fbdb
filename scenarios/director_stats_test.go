package scenarios

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestReportCarriesTheDirector: the run report holds the director engine's
// counters and drops by reason, under "director".
func TestReportCarriesTheDirector(t *testing.T) {
	t.Setenv(DurationScaleEnv, "0.1")
	s, err := LoadExample("quickstart")
	require.NoError(t, err)
	lab := StartTest(t, s)
	rep, err := lab.RunTimeline(context.Background())
	require.NoError(t, err)
	require.NotNil(t, rep.Director)
	assert.Equal(t, "director", rep.Director.Node)
	assert.NotZero(t, rep.Director.Counters["frames"])
	assert.NotZero(t, rep.Director.Counters["in"], "the load went through the engine")
	assert.NotZero(t, rep.Director.Counters["out"], "and its replies (NAT)")
	assert.NotNil(t, rep.Director.Drops)
	b, err := json.Marshal(rep)
	require.NoError(t, err)
	var doc map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(b, &doc))
	assert.Contains(t, string(doc["director"]), `"drops":`)
}
