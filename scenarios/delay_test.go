package scenarios

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"

	"github.com/lvslab/lvslab/topo"
	"github.com/lvslab/lvslab/topo/impair"
)

func TestRateGoesBeneathANetemDelay(t *testing.T) {
	assert.Equal(t, [][]string{
		{"tc", "qdisc", "replace", "dev", "eth0", "root", "tbf", "rate", "10mbit", "burst", "32kbit", "latency", "400ms"},
		{"tc", "qdisc", "replace", "dev", "eth1", "root", "tbf", "rate", "10mbit", "burst", "32kbit", "latency", "400ms"},
	}, rateCommands(2, "10mbit", false, true))
	assert.Equal(t, [][]string{
		{"tc", "qdisc", "replace", "dev", "eth0", "parent", "1:1", "tbf", "rate", "10mbit", "burst", "32kbit", "latency", "400ms"},
	}, rateCommands(1, "10mbit", true, true), "netem's child class")
	assert.Equal(t, [][]string{{"tc", "qdisc", "del", "dev", "eth0", "parent", "1:1"}}, rateCommands(1, "10mbit", true, false),
		"the rate comes off and leaves the delay to its own removal")
	assert.Equal(t, netlink.MakeHandle(1, 0), impair.NetemHandle, "1:1 is a class of the netem qdisc")
}

// TestLinkDelayWithRate delays the client's link (with a rate limit on it
// too) for the second of two phases: every request of that phase takes at
// least four crossings of the delay longer (a bound luck cannot meet),
// none fails, and the report names the mechanism and what it did.
func TestLinkDelayWithRate(t *testing.T) {
	needLabs(t)
	s, err := Parse("delay.yaml", []byte("name: delay\n"+natNodes+`services:
  - vip: 192.168.1.110:80
    scheduler: rr
    realservers: [{node: rs1, forward: nat}, {node: rs2, forward: nat}]
load:
  - {name: near, rate: 50/s, duration: 1s, timeout: 3s}
  - {name: far, rate: 50/s, duration: 2s, timeout: 3s, at: 1500ms}
faults:
  - {at: phase far, link: client, delay: 10ms, jitter: 2ms, rate: 50mbit, for: 2500ms}
`))
	require.NoError(t, err)
	runDir := t.TempDir()
	rep, err := s.Run(context.Background(), RunOptions{Scale: 1, Seed: 3, RunDir: runDir})
	require.NoError(t, err)
	require.Len(t, rep.Phases, 2)
	far := rep.Phases[1]
	assert.Zero(t, far.Errors, "%v", far.ErrorsByClass)
	assert.GreaterOrEqual(t, far.LatencyMS.P50, 4*8.0, "SYN, SYN-ACK, request and response each cross ≥ 8 ms")
	assert.GreaterOrEqual(t, far.LatencyMS.Max, 4*8.0)

	mech := topo.Probe().DelayMechanism()
	assert.Equal(t, mech, rep.Environment["delay"])
	require.Len(t, rep.Faults, 1)
	assert.Contains(t, rep.Faults[0].Detail, "delay 10ms ± 2ms each way ("+mech+")")
	if mech == impair.Userspace {
		assert.Contains(t, rep.Faults[0].Detail, "delay line: ")
		assert.NotContains(t, rep.Faults[0].Detail, "line: 0 frames")
	}
	requireNothingLeft(t, runDir, rep.Manifest["lab"])
}
