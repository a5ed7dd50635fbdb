package reports

import (
	"bytes"
	"encoding/json"
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lvslab/lvslab/reports/metrics"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/reports")

const goldenDir = "../testdata/reports"

// fixture is a ten-second open-loop run at 300/s over rs1..rs3 (weights
// 3:2:1) where rs3 hangs from 4 s to 6 s: its requests time out and the
// others wait behind it. Everything is computed, nothing is random.
func fixture(t *testing.T) *Report {
	t.Helper()
	start := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	rec := metrics.NewRecorder(start, time.Second)
	servers := []string{"rs1", "rs1", "rs1", "rs2", "rs2", "rs3"}
	for i := range 3000 {
		at := time.Duration(i) * time.Second / 300
		rec.Scheduled()
		rec.Sent(200)
		srv := servers[i%len(servers)]
		lat := time.Duration(800+(i*37)%900) * time.Microsecond
		hung := at >= 4*time.Second && at < 6*time.Second
		switch {
		case hung && srv == "rs3":
			rec.Record(&metrics.Outcome{At: at + time.Second, Class: metrics.Timeout})
			continue
		case hung:
			lat += time.Duration(i%50) * time.Millisecond
		}
		if i%997 == 0 {
			rec.Record(&metrics.Outcome{At: at + lat, Class: metrics.Refused})
			continue
		}
		rec.Record(&metrics.Outcome{At: at + lat, Class: metrics.OK, Latency: lat, Server: []byte(srv), NewConnection: true, Bytes: 8192})
	}
	res := rec.Finish(10*time.Second + 50*time.Millisecond)

	r := New("nat-wlc-three-servers")
	r.Description = "VS/NAT, wlc over three unequal real servers"
	require.NoError(t, r.AddLoad(Phase{
		Name: "steady", From: "client", Target: "192.168.1.110:80", Kind: "http", Rate: 300,
		Sources: 51, Duration: 10 * time.Second, Weights: map[string]float64{"rs1": 3, "rs2": 2, "rs3": 1},
	}, res))
	r.Environment = map[string]string{"packet_io": "afpacket", "ipip": "userspace", "netem": "absent", "kernel": "6.18.44"}
	r.Manifest = map[string]string{"lvslab": "test"}
	r.Services = append(r.Services, NewService("192.168.1.110:80", "tcp", "wlc", []RealServer{
		{Node: "rs1", Address: "10.1.1.2:80", Forward: "nat", Weight: 3, Connections: 1495, InPackets: 8970, OutPackets: 8970, InBytes: 897000, OutBytes: 12557000},
		{Node: "rs2", Address: "10.1.1.3:80", Forward: "nat", Weight: 2, Connections: 998, InPackets: 5988, OutPackets: 5988, InBytes: 598800, OutBytes: 8383200},
		{Node: "rs3", Address: "10.1.1.4:80", Forward: "nat", Weight: 1, Connections: 507, InPackets: 2300, OutPackets: 1900, InBytes: 230000, OutBytes: 2900000},
	}))
	detected := 0.9
	readded, recovered := 0.6, 1.0
	r.Faults = append(r.Faults, Fault{AtS: 4, Action: "hang", Target: "rs3", ForS: 2, DetectedAfterS: &detected,
		ReaddedAfterS: &readded, RecoveredAfterS: &recovered})
	r.Health = append(r.Health, Health{Node: "rs3", Service: "-t 192.168.1.110:80", Downs: 1, Flaps: 1, Up: true},
		Health{Node: "sorry", Service: "-t 192.168.1.110:80", Sorry: true, Ins: 1})
	r.Expectations = append(r.Expectations,
		Expectation{Text: "errors < 1%", Passed: false, Value: r.Load.ErrorRate},
		Expectation{Text: "p99 < 50ms", Passed: true, Value: r.Load.LatencyMS.P99})
	r.Finish()
	return r
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join(goldenDir, name)
	if *update {
		require.NoError(t, os.MkdirAll(goldenDir, 0o755))
		require.NoError(t, os.WriteFile(path, got, 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "run with -update to create it")
	assert.Equal(t, string(want), string(got), "%s differs; run go test ./reports -update to accept", name)
}

func TestGoldenJSON(t *testing.T) {
	var b bytes.Buffer
	require.NoError(t, WriteJSON(&b, fixture(t)))
	golden(t, "report.golden.json", b.Bytes())
}

func TestGoldenMarkdown(t *testing.T) {
	var b bytes.Buffer
	require.NoError(t, WriteMarkdown(&b, fixture(t)))
	golden(t, "report.golden.md", b.Bytes())
}

// TestJSONStableFields checks the fields spec/scenario.md promises, by name.
func TestJSONStableFields(t *testing.T) {
	var b bytes.Buffer
	require.NoError(t, WriteJSON(&b, fixture(t)))
	var m map[string]any
	require.NoError(t, json.Unmarshal(b.Bytes(), &m))
	for _, k := range []string{"scenario", "passed", "duration_s", "environment", "load", "services", "faults", "expectations", "timeseries"} {
		assert.Contains(t, m, k)
	}
	load := m["load"].(map[string]any)
	for _, k := range []string{"requests", "errors", "error_rate", "throughput_rps", "throughput_bps", "latency_ms"} {
		assert.Contains(t, load, k)
	}
	for _, k := range []string{"p50", "p90", "p99", "p999", "max"} {
		assert.Contains(t, load["latency_ms"], k)
	}
	svc := m["services"].([]any)[0].(map[string]any)
	for _, k := range []string{"vip", "protocol", "scheduler", "realservers", "fairness"} {
		assert.Contains(t, svc, k)
	}
	rs := svc["realservers"].([]any)[0].(map[string]any)
	for _, k := range []string{"node", "address", "forward", "weight", "connections", "share", "weight_share", "in_packets", "out_packets", "in_bytes", "out_bytes"} {
		assert.Contains(t, rs, k)
	}
	for _, k := range []string{"jain", "weighted_jain", "max_share_error"} {
		assert.Contains(t, svc["fairness"], k)
	}
	for _, k := range []string{"at_s", "action", "target", "detected_after_s", "readded_after_s", "recovered_after_s"} {
		assert.Contains(t, m["faults"].([]any)[0], k)
	}
	for _, k := range []string{"text", "passed", "value"} {
		assert.Contains(t, m["expectations"].([]any)[0], k)
	}
	for _, k := range []string{"interval_s", "rps", "errors", "p99_ms", "per_realserver_cps"} {
		assert.Contains(t, m["timeseries"], k)
	}
	for _, k := range []string{"node", "service", "downs", "flaps", "up"} {
		assert.Contains(t, m["health"].([]any)[0], k)
	}
}

func TestFixtureNumbers(t *testing.T) {
	r := fixture(t)
	assert.False(t, r.Passed, "a failed expectation fails the report")
	l := r.Load
	assert.Equal(t, uint64(3000), l.Requests)
	assert.Equal(t, l.ErrorsByClass["timeout"]+l.ErrorsByClass["refused"], l.Errors)
	assert.Equal(t, uint64(100), l.ErrorsByClass["timeout"], "rs3's sixth of 600 requests in the hang")
	require.Len(t, l.Realservers, 3)
	assert.Equal(t, "rs1", l.Realservers[0].ID)
	assert.InDelta(t, 0.5, l.WeightShareOf("rs1"), 1e-9)
	ts := r.Timeseries
	require.Len(t, ts.RPS, 10)
	assert.Greater(t, ts.P99MS[5], 10*ts.P99MS[1], "the hang shows in the per-second tail")
	assert.Len(t, ts.PerRealserverCPS, 3)
}

func TestEmptyReportRenders(t *testing.T) {
	r := New("empty")
	r.Finish()
	var b bytes.Buffer
	require.NoError(t, WriteMarkdown(&b, r))
	require.NoError(t, WriteJSON(&b, r))
	figs, err := Figures(r)
	require.NoError(t, err)
	assert.Empty(t, figs)
	require.NoError(t, WriteHTML(&b, r, figs))
}

// TestAllPhasesOfTwoServices: phases aimed at two services merge into a row
// that names both targets and weighs every real server as its own phase did.
func TestAllPhasesOfTwoServices(t *testing.T) {
	start := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	phase := func(servers ...string) *metrics.Result {
		rec := metrics.NewRecorder(start, time.Second)
		for i := range 40 {
			rec.Scheduled()
			rec.Sent(100)
			rec.Record(&metrics.Outcome{At: time.Duration(i) * 10 * time.Millisecond, Class: metrics.OK, Latency: time.Millisecond,
				Server: []byte(servers[i%len(servers)]), NewConnection: true, Bytes: 100})
		}
		return rec.Finish(time.Second)
	}
	r := New("two")
	require.NoError(t, r.AddLoad(Phase{Name: "rr", From: "client", Target: "192.168.1.110:80", Rate: 40, Duration: time.Second,
		Weights: map[string]float64{"rr-fast": 1, "rr-slow": 1}}, phase("rr-fast", "rr-slow")))
	require.NoError(t, r.AddLoad(Phase{Name: "wlc", From: "client", Target: "192.168.1.111:80", Rate: 40, Duration: time.Second,
		Weights: map[string]float64{"wlc-fast": 3, "wlc-slow": 1}}, phase("wlc-fast", "wlc-fast", "wlc-fast", "wlc-slow")))
	require.Len(t, r.Phases, 2)
	assert.Equal(t, "all phases", r.Load.Name)
	assert.Equal(t, "192.168.1.110:80,192.168.1.111:80", r.Load.Target)
	assert.Equal(t, "client", r.Load.From)
	weights := map[string]float64{}
	for _, s := range r.Load.Realservers {
		weights[s.ID] = s.Weight
		assert.NotZero(t, s.WeightShare, s.ID)
	}
	assert.Equal(t, map[string]float64{"rr-fast": 1, "rr-slow": 1, "wlc-fast": 3, "wlc-slow": 1}, weights)
	for i, p := range r.Phases {
		assert.Len(t, p.Realservers, 2, "phase %d has its own service's servers", i)
	}
}

// TestClientsShowPersistence: each client address's connections by real
// server, and the clients that reached more than one.
func TestClientsShowPersistence(t *testing.T) {
	start := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	rec := metrics.NewRecorder(start, time.Second)
	c := func(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }
	for _, o := range []struct {
		client, server string
	}{{"192.168.1.201:80", "rs1"}, {"192.168.1.200:80", "rs2"}, {"192.168.1.200:443", "rs2"}, {"192.168.1.202:80", "rs1"}, {"192.168.1.202:443", "rs10"}, {"192.168.1.203:80", ""}} {
		rec.Record(&metrics.Outcome{Class: metrics.OK, Server: []byte(o.server), NewConnection: true, Bytes: 10, Client: c(o.client)})
	}
	r := New("sticky")
	require.NoError(t, r.AddLoad(Phase{Name: "p", Duration: time.Second}, rec.Finish(time.Second)))
	assert.Equal(t, &Clients{Addresses: 3, PersistenceViolations: 1, MaxServersPerClient: 2, PerClient: []ClientLoad{
		{Address: "192.168.1.200", Realservers: map[string]uint64{"rs2": 2}, ByPort: map[uint16]map[string]uint64{80: {"rs2": 1}, 443: {"rs2": 1}}},
		{Address: "192.168.1.201", Realservers: map[string]uint64{"rs1": 1}, ByPort: map[uint16]map[string]uint64{80: {"rs1": 1}}},
		{Address: "192.168.1.202", Realservers: map[string]uint64{"rs1": 1, "rs10": 1}, ByPort: map[uint16]map[string]uint64{80: {"rs1": 1}, 443: {"rs10": 1}}},
	}}, r.Load.Clients, "a response that named nobody counts for no client")
	var md bytes.Buffer
	require.NoError(t, WriteMarkdown(&md, r))
	assert.Contains(t, md.String(), "3 client addresses, 1 reached more than one real server")
	assert.Contains(t, md.String(), "| 192.168.1.202 | rs1 1, rs10 1 | :80 rs1 1; :443 rs10 1 |")
}
