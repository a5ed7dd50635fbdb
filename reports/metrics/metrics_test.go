package metrics

import (
	"encoding/json"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// record fills a Recorder with n OK responses from server, one every step
// starting at offset, each with latency lat.
func record(r *Recorder, server string, n int, offset, step, lat time.Duration) {
	for i := range n {
		r.Scheduled()
		r.Sent(100)
		r.Record(&Outcome{At: offset + time.Duration(i)*step, Class: OK, Latency: lat, Server: []byte(server), NewConnection: true, Bytes: 1000})
	}
}

func TestRecorderCountsPerServerAndInterval(t *testing.T) {
	r := NewRecorder(t0, time.Second)
	record(r, "rs1", 10, 0, 100*time.Millisecond, 2*time.Millisecond)                  // second 0
	record(r, "rs2", 5, 1500*time.Millisecond, 100*time.Millisecond, time.Millisecond) // second 1 and 2
	r.Record(&Outcome{At: 2500 * time.Millisecond, Class: Refused})
	res := r.Finish(3 * time.Second)

	assert.Equal(t, uint64(15), res.Outcomes[OK])
	assert.Equal(t, uint64(16), res.Requests())
	assert.Equal(t, uint64(1), res.Errors())
	assert.Equal(t, ServerCounts{Connections: 10, Requests: 10, Bytes: 10000}, *res.Servers["rs1"])
	assert.Equal(t, ServerCounts{Connections: 5, Requests: 5, Bytes: 5000}, *res.Servers["rs2"])
	assert.NotContains(t, res.Servers, "", "a refused request is attributed to nobody")
	require.Len(t, res.Series, 3)
	assert.Equal(t, map[string]uint64{"rs1": 10}, res.Series[0].Connections)
	assert.Equal(t, map[string]uint64{"rs2": 5}, res.Series[1].Connections)
	assert.Equal(t, uint64(1), res.Series[2].Errors())
	assert.InEpsilon(t, 2000, res.Series[0].Latency.ValueAtQuantile(50), 0.01, "µs, from the intended send, within two digits")
}

func TestMergeAlignsSeriesOnStart(t *testing.T) {
	a := NewRecorder(t0, time.Second)
	record(a, "rs1", 2, 0, time.Second, time.Millisecond) // seconds 0, 1
	ra := a.Finish(2 * time.Second)

	b := NewRecorder(t0.Add(-time.Second), time.Second)     // started a second earlier
	record(b, "rs2", 3, 0, time.Second, 3*time.Millisecond) // seconds -1, 0, 1 in a's frame
	rb := b.Finish(3 * time.Second)

	require.NoError(t, ra.Merge(rb))
	assert.Equal(t, t0.Add(-time.Second), ra.Start, "the earlier start wins")
	assert.Equal(t, 3*time.Second, ra.Elapsed)
	require.Len(t, ra.Series, 3)
	assert.Equal(t, map[string]uint64{"rs2": 1}, ra.Series[0].Connections)
	assert.Equal(t, map[string]uint64{"rs1": 1, "rs2": 1}, ra.Series[1].Connections)
	assert.Equal(t, uint64(5), ra.Outcomes[OK])
	assert.Equal(t, int64(5), ra.Latency.TotalCount())

	c := NewResult(t0, 2*time.Second)
	assert.Error(t, ra.Merge(c), "different intervals do not merge")
}

func TestResultJSONRoundTrip(t *testing.T) {
	r := NewRecorder(t0, time.Second)
	record(r, "rs1", 20, 0, 50*time.Millisecond, 1500*time.Microsecond)
	r.Record(&Outcome{At: time.Second, Class: Timeout})
	res := r.Finish(1100 * time.Millisecond)

	b, err := json.Marshal(res)
	require.NoError(t, err)
	var back Result
	require.NoError(t, json.Unmarshal(b, &back))
	assert.Equal(t, res.Outcomes, back.Outcomes)
	assert.Equal(t, res.Servers, back.Servers)
	assert.True(t, res.Start.Equal(back.Start))
	assert.Equal(t, res.Elapsed, back.Elapsed)
	assert.Equal(t, res.Latency.ValueAtQuantile(99), back.Latency.ValueAtQuantile(99))
	require.Len(t, back.Series, len(res.Series))
	assert.Equal(t, res.Series[1].Outcomes, back.Series[1].Outcomes)

	assert.Error(t, json.Unmarshal([]byte(`{"interval_ns":1000000000,"outcomes":{"bogus":1}}`), &back))
	assert.Error(t, json.Unmarshal([]byte(`{"interval_ns":0}`), &back))
}

// TestClientsPerServer counts each bound client address's new
// connections by the server that answered, through Merge and JSON.
func TestClientsPerServer(t *testing.T) {
	c1, c2 := netip.MustParseAddrPort("192.168.1.200:80"), netip.MustParseAddrPort("192.168.1.201:80")
	a := NewRecorder(t0, time.Second)
	for _, o := range []Outcome{
		{Class: OK, Server: []byte("rs1"), NewConnection: true, Client: c1},
		{Class: OK, Server: []byte("rs1"), NewConnection: false, Client: c1}, // a kept-alive request: no new connection
		{Class: OK, Server: []byte("rs2"), NewConnection: true, Client: c2},
		{Class: OK, Server: []byte("rs2"), NewConnection: true}, // no bound address
		{Class: Refused, Client: c1},                            // nobody answered
	} {
		a.Record(&o)
	}
	ra := a.Finish(time.Second)
	assert.Equal(t, map[netip.AddrPort]map[string]uint64{c1: {"rs1": 1}, c2: {"rs2": 1}}, ra.Clients)

	b := NewRecorder(t0, time.Second)
	b.Record(&Outcome{Class: OK, Server: []byte("rs3"), NewConnection: true, Client: c1})
	c1443 := netip.AddrPortFrom(c1.Addr(), 443)
	b.Record(&Outcome{Class: OK, Server: []byte("rs3"), NewConnection: true, Client: c1443})
	rb := b.Finish(time.Second)
	require.NoError(t, ra.Merge(rb))
	want := map[netip.AddrPort]map[string]uint64{c1: {"rs1": 1, "rs3": 1}, c1443: {"rs3": 1}, c2: {"rs2": 1}}
	assert.Equal(t, want, ra.Clients)

	j, err := json.Marshal(ra)
	require.NoError(t, err)
	var back Result
	require.NoError(t, json.Unmarshal(j, &back))
	assert.Equal(t, want, back.Clients)
}

func BenchmarkRecord(b *testing.B) {
	r := NewRecorder(t0, time.Second)
	o := Outcome{Class: OK, Latency: 300 * time.Microsecond, Server: []byte("rs1"), NewConnection: true, Bytes: 100}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		o.At = time.Duration(i) * time.Microsecond
		r.Record(&o)
	}
}

// BenchmarkRecordClient records new connections of bound client
// addresses: still no allocation once each client was seen.
func BenchmarkRecordClient(b *testing.B) {
	r := NewRecorder(t0, time.Second)
	clients := []netip.AddrPort{netip.MustParseAddrPort("192.168.1.200:80"), netip.MustParseAddrPort("192.168.1.201:443")}
	o := Outcome{Class: OK, Latency: 300 * time.Microsecond, Server: []byte("rs1"), NewConnection: true, Bytes: 100}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		o.At = time.Duration(i) * time.Microsecond
		o.Client = clients[i%2]
		r.Record(&o)
	}
}
