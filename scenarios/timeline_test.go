package scenarios

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lvslab/lvslab/reports"
)

const natLab = "\n" + labFront + `  - {name: rs1, role: realserver, interfaces: [{network: internal, address: 10.1.1.2}], server: {kind: http, service_time: 1ms}}
  - {name: rs2, role: realserver, interfaces: [{network: internal, address: 10.1.1.3}]}
services:
  - vip: 192.168.1.110:80
    scheduler: wlc
    realservers:
      - {node: rs1, forward: nat, weight: 2}
      - {node: rs2, forward: nat, standby: true}
`

func TestLinkDelayCombinesWithLossAndRate(t *testing.T) {
	s, err := Parse("t.yaml", []byte(natLab+`faults:
  - {at: 5s, link: rs1, delay: 20ms, jitter: 5ms, for: 10s}
  - {at: 1s, link: client, delay: 1ms, loss: 5%, rate: 10mbit}
  - {at: 2s, link: rs2, delay: 0s}
  - {at: 20s, link: rs1, delay: 10ms, jitter: 9ms, reorder: true}
`))
	require.NoError(t, err)
	d, err := s.Faults[0].LinkDelay()
	require.NoError(t, err)
	assert.Equal(t, LinkDelay{Delay: 20 * time.Millisecond, Jitter: 5 * time.Millisecond}, d)
	_, length := s.FaultTimes(&s.Faults[0], 0.5)
	assert.Equal(t, 5*time.Second, length, "for: scales, the delay does not")
	d, err = s.Faults[1].LinkDelay()
	require.NoError(t, err)
	assert.Equal(t, LinkDelay{Delay: time.Millisecond}, d)
	d, err = s.Faults[3].LinkDelay()
	require.NoError(t, err)
	assert.Equal(t, LinkDelay{Delay: 10 * time.Millisecond, Jitter: 9 * time.Millisecond, Reorder: true}, d)
}

func TestTimelineParses(t *testing.T) {
	s, err := Parse("t.yaml", []byte(natLab+`load:
  - {name: warm, from: client, rate: 100/s, duration: 2s}
  - {name: steady, from: client, concurrency: 4, duration: 3s}
faults:
  - {at: 1s, hang: rs1, for: 500ms}
  - {at: phase steady, add: rs2}
  - {at: 4s, weight: {node: rs1, value: 0}}
expect:
  - errors < 1%
  - share(rs1) within 0.05 of weight_share(rs1)
`))
	require.NoError(t, err)
	starts, end := s.PhaseStarts(1)
	assert.Equal(t, []time.Duration{0, 2 * time.Second}, starts)
	assert.Equal(t, 5*time.Second, end)
	at, length := s.FaultTimes(&s.Faults[0], 0.5)
	assert.Equal(t, 500*time.Millisecond, at)
	assert.Equal(t, 250*time.Millisecond, length)
	at, _ = s.FaultTimes(&s.Faults[1], 0.5)
	assert.Equal(t, time.Second, at, "a phase start moves with the scale")
	act, target, _ := s.Faults[2].Action()
	assert.Equal(t, Weight, act)
	assert.Equal(t, "rs1", target)
}

// TestBrokenTimelines: every problem of the timeline half at once, at its
// position, naming the object.
func TestBrokenTimelines(t *testing.T) {
	for _, tc := range []struct {
		name, src string
		want      []string
	}{{
		name: "load phases",
		src: natLab + `load:
  - {name: a, from: rs1, rate: fast, duration: 10}
  - {from: ghost, kind: quic, target: 192.168.1.110}
  - {name: c, arrival: bursty, concurrency: 2, timeout: -1s}
  - {name: d, rate: 1/s, target: "443,192.168.1.110:80"}
  - {name: e, rate: 1/s, target: "192.168.1.110:80,0"}
  - {name: f, rate: 1/s, target: "192.168.1.110:80,80"}
`,
		want: []string{
			`b.yaml:21:21: load phase "a": node "rs1" is a realserver, not a client`,
			`b.yaml:21:32: load phase "a": rate "fast" is not a rate like 2000/s`,
			`b.yaml:21:48: load phase "a": duration "10": not a duration like 10s or 500ms`,
			`b.yaml:22:5: load phase 2: needs rate (open loop, 2000/s) or concurrency (closed loop)`,
			`b.yaml:22:12: load phase 2: client "ghost" is not a node`,
			`b.yaml:22:25: load phase 2: unknown kind "quic" (want http, tcp or udp)`,
			`b.yaml:22:39: load phase 2: target "192.168.1.110" is not an address and port like 192.168.1.110:80 (or several: 192.168.1.110:80,443)`,
			`b.yaml:23:24: load phase "c": arrival "bursty" is not constant or poisson`,
			`b.yaml:23:57: load phase "c": timeout "-1s": is negative`,
			`b.yaml:24:34: load phase "d": target "443,192.168.1.110:80" is not an address and port like 192.168.1.110:80 (or several: 192.168.1.110:80,443)`,
			`b.yaml:25:34: load phase "e": target "192.168.1.110:80,0" is not an address and port like 192.168.1.110:80 (or several: 192.168.1.110:80,443)`,
			`b.yaml:26:34: load phase "f": target "192.168.1.110:80,80" names 192.168.1.110:80 twice`,
		},
	}, {
		name: "faults",
		src: natLab + `faults:
  - {at: 1s}
  - {at: 1s, kill: rs1, hang: rs2}
  - {at: soon, kill: client}
  - {at: phase nope, slow: rs1}
  - {at: 2s, restore: rs1, for: 1s}
  - {at: 2s, weight: {node: rs1, value: 70000}}
  - {at: 2s, add: director}
`,
		want: []string{
			`b.yaml:21:5: fault 1: says nothing to do (kill, restore, hang, slow, reset, error, refuse, weight, add, remove or link)`,
			`b.yaml:22:5: fault 2: does more than one thing; give each its own fault`,
			`b.yaml:23:10: fault kill client: at "soon": not a duration like 10s or 500ms`,
			`b.yaml:23:22: fault kill client: node "client" is a client, not a realserver`,
			`b.yaml:24:5: fault slow rs1: slow needs a delay like 200ms`,
			`b.yaml:24:10: fault slow rs1: at "phase nope": no load phase is called "nope"`,
			`b.yaml:25:33: fault restore rs1: restore has no for: (give the opposite fault its own time)`,
			`b.yaml:26:41: fault weight rs1: weight 70000 is outside 0–65535`,
			`b.yaml:27:19: fault add director: node "director" is a director, not a realserver`,
		},
	}, {
		name: "link delays",
		src: natLab + `faults:
  - {at: 1s, link: rs1, jitter: 5ms}
  - {at: 1s, link: rs1, delay: soon, jitter: -1ms}
  - {at: 1s, link: rs1, delay: 5ms, jitter: 10ms}
  - {at: 1s, link: rs1, down: true, delay: 20ms}
  - {at: 1s, hang: rs1, delay: 20ms, jitter: 5ms}
  - {at: 1s, slow: rs1, jitter: 5ms}
  - {at: 1s, link: rs1, delay: 5ms, reorder: true}
  - {at: 1s, hang: rs1, reorder: true}
  - {at: 10s, link: client, delay: 5ms, for: 2s}
  - {at: 11s, link: client, delay: 5ms}
  - {at: 12s, link: client, delay: 5ms, for: 1s}
`,
		want: []string{
			`b.yaml:21:33: fault link rs1: jitter needs a delay (delay: 20ms, jitter: 5ms)`,
			`b.yaml:22:32: fault link rs1: delay "soon": not a duration like 10s or 500ms`,
			`b.yaml:23:45: fault link rs1: jitter 10ms exceeds the delay 5ms (a packet cannot leave before it arrived)`,
			`b.yaml:24:5: fault link rs1: link takes down: true, or any of loss: 5%, rate: 10mbit and delay: 20ms (with jitter: 5ms)`,
			`b.yaml:25:32: fault hang rs1: delay belongs to slow (a server's answer) or link (the node's links)`,
			`b.yaml:25:46: fault hang rs1: jitter belongs to a link's delay`,
			`b.yaml:26:5: fault slow rs1: slow needs a delay like 200ms`,
			`b.yaml:26:33: fault slow rs1: jitter belongs to a link's delay`,
			`b.yaml:27:46: fault link rs1: reorder needs jitter: with one delay for all, no packet overtakes another`,
			`b.yaml:28:34: fault hang rs1: reorder belongs to a link's delay`,
			`b.yaml:30:36: fault link client: client's links are still delayed by fault 9 then (one delay at a time)`,
			`b.yaml:31:36: fault link client: client's links are still delayed by fault 10 then (one delay at a time)`,
		},
	}, {
		name: "expectations, servers, services",
		src: strings.Replace(natLab, "scheduler: wlc", "scheduler: wlc\n    persistence: {timeout: 1.5s, netmask: 255.0.255.0}\n    health_check: {kind: ping, interval: often}", 1) + `expect:
  - latency < 5ms
  - p99 < fast
  - share(rs1) within 5% of
  - errors < 1% please
  - recovered rs2 < 3s
  - recovered(rs2) < soon
  - p99 < 50ms during
  - recovered(rs2) < 3s during steady
  - p99 < 50ms during cool
`,
		want: []string{
			`b.yaml:17:28: service 192.168.1.110:80: persistence timeout "1.5s": must be whole seconds, at least 1s`,
			`b.yaml:17:43: service 192.168.1.110:80: persistence netmask "255.0.255.0" is not a netmask like 255.255.255.0`,
			`b.yaml:18:26: service 192.168.1.110:80: health check kind "ping" is not one of tcp, http, command`,
			`b.yaml:18:42: service 192.168.1.110:80: interval "often": not a duration like 10s or 500ms`,
			`b.yaml:23:5: expectation "latency < 5ms": unknown metric "latency" (known: errors, error_rate, requests, throughput_rps, throughput_bps, p50, p90, p99, p999, max, mean, jain, weighted_jain, max_share_error, share(RS), weight_share(RS), connections(RS), persistence_violations, servers_per_client, detected(RS), recovered(RS))`,
			`b.yaml:24:5: expectation "p99 < fast": "fast" is not a duration like 50ms`,
			`b.yaml:25:5: expectation "share(rs1) within 5% of": "within" reads: A within TOLERANCE of B`,
			`b.yaml:26:5: expectation "errors < 1% please": "1% please" is not a number`,
			`b.yaml:27:5: expectation "recovered rs2 < 3s": recovered needs a real server: recovered(rs1)`,
			`b.yaml:28:5: expectation "recovered(rs2) < soon": "soon" is not a duration like 50ms`,
			`b.yaml:29:5: expectation "p99 < 50ms during": "during" needs a load phase's name: p99 < 50ms during steady`,
			`b.yaml:30:5: expectation "recovered(rs2) < 3s during steady": recovered(rs2) is about faults, not a load phase: it takes no during`,
			`b.yaml:31:5: expectation "p99 < 50ms during cool": no load phase is called "cool"`,
		},
	}, {
		name: "health check digests",
		src: natLab + `  - {vip: 192.168.1.111:80, realservers: [{node: rs1, forward: nat}], health_check: {kind: http, digest: d41d8cd98f00b204}}
  - {vip: 192.168.1.112:80, realservers: [{node: rs1, forward: nat}], health_check: {kind: tcp, digest: d41d8cd98f00b204e9800998ecf8427e, path: /}}
`,
		want: []string{
			`b.yaml:20:106: service 192.168.1.111:80: digest "d41d8cd98f00b204" is not an MD5 digest (32 hex digits)`,
			`b.yaml:21:105: service 192.168.1.112:80: digest belongs to kind: http`,
			`b.yaml:21:145: service 192.168.1.112:80: path belongs to kind: http`,
		},
	}, {
		name: "sorry servers",
		src: natLab + `  - {vip: 192.168.1.111:80, realservers: [{node: rs1, forward: nat}], health_check: {kind: tcp, sorry_server: rs1}}
  - {vip: 192.168.1.112:80, realservers: [{node: rs1, forward: nat}], health_check: {kind: tcp, sorry_server: director}}
  - {vip: 192.168.1.113:80, realservers: [{node: rs1, forward: nat}], health_check: {kind: tcp, sorry_server: ghost}}
`,
		want: []string{
			`b.yaml:20:111: service 192.168.1.111:80: sorry server "rs1" is one of the service's real servers`,
			`b.yaml:21:111: service 192.168.1.112:80: sorry server "director" is a director, not a realserver`,
			`b.yaml:22:111: service 192.168.1.113:80: sorry server "ghost" is not a node`,
		},
	}, {
		name: "servers",
		src: strings.Replace(natLab, "server: {kind: http, service_time: 1ms}", "server: {kind: smtp, service_time: soon, port: 70000}", 1) + `  - {vip: 192.168.1.111:80, realservers: [{node: rs1}]}
`,
		want: []string{
			`b.yaml:12:104: node "rs1": server kind "smtp" is not one of http, tcp, udp, command`,
			`b.yaml:12:124: node "rs1": service time "soon": want a non-negative duration such as 2ms`,
			`b.yaml:12:136: node "rs1": port 70000 is outside 1–65535`,
		},
	}, {
		name: "server ports",
		src:  strings.Replace(natLab, "server: {kind: http, service_time: 1ms}", "server: {port: 80, ports: [80, 0, 443, 443]}", 1),
		want: []string{
			`b.yaml:12:115: node "rs1": give port or ports, not both`,
			`b.yaml:12:120: node "rs1": port 0 is outside 1–65535`,
			`b.yaml:12:128: node "rs1": port 443 is listed twice`,
		},
	}, {
		name: "load the servers do not speak",
		src: natLab + `load:
  - {name: a, from: client, kind: tcp, rate: 10/s}
`,
		want: []string{
			`b.yaml:21:5: load phase "a": sends tcp requests, but real server "rs1" serves http (give it server: {kind: tcp})`,
			`b.yaml:21:5: load phase "a": sends tcp requests, but real server "rs2" serves http (give it server: {kind: tcp})`,
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("b.yaml", []byte(tc.src))
			require.Error(t, err)
			assert.Equal(t, strings.Join(tc.want, "\n"), err.Error())
		})
	}
}

func TestExpectations(t *testing.T) {
	r := reports.New("x")
	r.Load = &reports.Load{Requests: 1000, Errors: 5, ErrorRate: 0.005, ThroughputRPS: 99.5,
		LatencyMS: reports.Latency{P99: 12.5}, Fairness: &reports.Fairness{Jain: 0.97},
		Realservers: []reports.ServerLoad{{ID: "rs1", Connections: 600, Share: 0.6, WeightShare: 0.5}},
		Clients:     &reports.Clients{Addresses: 4, PersistenceViolations: 1, MaxServersPerClient: 2}}
	r.Phases = []reports.Load{{Name: "warm", LatencyMS: reports.Latency{P99: 80}, Errors: 5},
		{Name: "steady", LatencyMS: reports.Latency{P99: 9}, Clients: &reports.Clients{Addresses: 4, MaxServersPerClient: 1}}}
	detected, fast, slow := 0.4, 0.5, 2.5
	r.Faults = []reports.Fault{{AtS: 1, Action: "kill", Target: "rs2", RecoveredAfterS: &fast},
		{AtS: 2, Action: "hang", Target: "rs2", DetectedAfterS: &detected, RecoveredAfterS: &slow},
		{AtS: 3, Action: "restore", Target: "rs2"},
		{AtS: 4, Action: "kill", Target: "rs3"}}
	for _, tc := range []struct {
		text   string
		passed bool
		value  float64
	}{
		{"errors < 1%", true, 0.005},
		{"errors <= 4", false, 5},
		{"p99 < 50ms", true, 12.5},
		{"p99 < 0.01s", false, 12.5},
		{"throughput_rps > 100", false, 99.5},
		{"jain > 0.95", true, 0.97},
		{"share(rs1) within 0.05 of weight_share(rs1)", false, 0.1},
		{"share(rs1) within 15% of weight_share(rs1)", true, 0.1},
		{"connections(rs9) == 0", true, 0},
		{"detected(rs2) < 1s", true, 400},
		{"recovered(rs2) < 3s", true, 2500},
		{"recovered(rs2) < 2s", false, 2500},
		{"persistence_violations == 0", false, 1},
		{"servers_per_client <= 2", true, 2},
		{"p99 < 50ms during steady", true, 9},
		{"p99 < 50ms during warm", false, 80},
		{"errors == 0 during steady", true, 0},
		{"persistence_violations == 0 during steady", true, 0},
		{"servers_per_client == 1 during steady", true, 1},
	} {
		e, err := ParseExpectation(tc.text)
		require.NoError(t, err, tc.text)
		got := e.Evaluate(r)
		assert.Equal(t, tc.passed, got.Passed, tc.text)
		assert.InDelta(t, tc.value, got.Value, 1e-9, tc.text)
	}
	e, err := ParseExpectation("weight_share(rs9) > 0")
	require.NoError(t, err)
	got := e.Evaluate(r)
	assert.False(t, got.Passed)
	assert.Equal(t, `no real server "rs9" served this run`, got.Detail)
	for text, why := range map[string]string{
		"recovered(rs3) < 3s":                     "the errors after the kill of rs3 at 4s never stopped",
		"recovered(rs1) < 3s":                     "no fault on rs1",
		"p99 < 50ms during cool":                  `load phase "cool" measured nothing`,
		"persistence_violations == 0 during warm": "no connection came from a client source address (give the client source_addresses)",
	} {
		e, err := ParseExpectation(text)
		require.NoError(t, err)
		got := e.Evaluate(r)
		assert.False(t, got.Passed, text)
		assert.Equal(t, why, got.Detail, text)
	}
}

func TestRecoveredAfter(t *testing.T) {
	ts := reports.Timeseries{IntervalS: 1,
		RPS:    []float64{10, 10, 5, 5, 0, 10, 10, 0, 10},
		Errors: []uint64{0, 4, 5, 3, 0, 0, 0, 0, 10}}
	for _, tc := range []struct {
		name        string
		from, until float64
		want        *float64
	}{
		{"errors end 1.5s after the restore", 2.5, 8, ptr(1.5)},
		{"no errors after the start", 4, 8, ptr(0)},
		{"errors until the next fault", 1, 4, nil},
		{"the next fault's interval left out", 5, 8.5, ptr(0)},
		{"errors to the end", 5, 100, nil},
		{"no load measured", 7, 8, nil},
		{"a restore inside the last bad interval", 3.5, 8, ptr(0.5)},
	} {
		assert.Equal(t, tc.want, recoveredAfter(ts, tc.from, tc.until), tc.name)
	}
}

func ptr(v float64) *float64 { return &v }

func TestHealthSummary(t *testing.T) {
	at := time.Unix(0, 0)
	specs := []checkSpec{{Dest: Destination{Node: "rs1", Service: "-t 1.1.1.1:80"}}, {Dest: Destination{Node: "rs2", Service: "-t 1.1.1.1:80"}}}
	var events []HealthEvent
	for i, up := range []bool{false, true, false, true, false} {
		events = append(events, HealthEvent{Node: "rs2", Service: "-t 1.1.1.1:80", Up: up, At: at.Add(time.Duration(i) * time.Second)})
	}
	assert.Equal(t, []reports.Health{
		{Node: "rs1", Service: "-t 1.1.1.1:80", Up: true},
		{Node: "rs2", Service: "-t 1.1.1.1:80", Downs: 3, Flaps: 2, Up: false},
	}, healthSummary(events, specs))
}

func FuzzExpectation(f *testing.F) {
	for _, s := range []string{"errors < 1%", "share(rs1) within 0.05 of weight_share(rs1)", "p99 < 50ms", "jain>0.9", "recovered(rs2) < 3s",
		"p99 < 50ms during steady", "persistence_violations == 0"} {
		f.Add(s)
	}
	r := reports.New("x")
	r.Load = &reports.Load{}
	f.Fuzz(func(t *testing.T, s string) {
		if e, err := ParseExpectation(s); err == nil {
			e.Evaluate(r)
		}
	})
}

// TestHTTPCheckDigest: an http check compares the MD5 of the body, as
// keepalived's HTTP_GET digest does, after the status.
func TestHTTPCheckDigest(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/gone" {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		io.WriteString(w, "hello")
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	const hello = "5d41402abc4b2a76b9719d911017c592" // md5("hello")
	spec := func(path, digest string) checkSpec {
		return checkSpec{Kind: "http", Addr: addr, Path: path, Status: 200, Digest: digest, Timeout: 5 * time.Second}
	}
	assert.NoError(t, check(context.Background(), spec("/", hello)))
	assert.NoError(t, check(context.Background(), spec("/", "")), "no digest: any body")
	assert.EqualError(t, check(context.Background(), spec("/", "d41d8cd98f00b204e9800998ecf8427e")),
		"body digest 5d41402abc4b2a76b9719d911017c592, want d41d8cd98f00b204e9800998ecf8427e")
	assert.EqualError(t, check(context.Background(), spec("/gone", hello)), "status 503, want 200")
}

func TestHealthStateRiseFall(t *testing.T) {
	h := newHealthState(2, 3)
	var changes []bool
	for _, ok := range []bool{false, false, true, false, false, false, false, true, false, true, true, true} {
		if h.observe(ok) {
			changes = append(changes, h.up)
		}
	}
	assert.Equal(t, []bool{false, true}, changes, "down after 3 failures in a row, up after 2 successes in a row")
	assert.True(t, h.up)
}

// TestPhaseWaitsForTheFaultsBeforeIt: a phase starting at a time waits for
// every fault action and restore timed at or before it, and for no other.
func TestPhaseWaitsForTheFaultsBeforeIt(t *testing.T) {
	s, err := Parse("t.yaml", []byte(natLab+`faults:
  - {at: 1s, kill: rs1, for: 2s}
  - {at: 5s, weight: {node: rs2, value: 3}}
`))
	require.NoError(t, err)
	r := &run{s: s, opt: RunOptions{Scale: 1}}
	st := newFaultSteps(len(s.Faults))
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	waits := func(at time.Duration) bool { return !r.awaitFaults(canceled, st, at) }

	assert.False(t, waits(500*time.Millisecond), "no fault before 0.5s")
	assert.True(t, waits(time.Second), "the kill at 1s")
	close(st.applied[0])
	assert.False(t, waits(2*time.Second), "the kill is done, its restore is at 3s")
	assert.True(t, waits(3*time.Second), "the restore at 3s")
	close(st.restored[0])
	assert.False(t, waits(4*time.Second))
	assert.True(t, waits(5*time.Second), "the weight at 5s")
	close(st.applied[1])
	close(st.restored[1])
	assert.True(t, r.awaitFaults(context.Background(), st, time.Minute))
}
