package loadgen

import (
	"context"
	"io"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lvslab/lvslab/loadgen/realserver"
	"github.com/lvslab/lvslab/loadgen/wire"
	"github.com/lvslab/lvslab/reports/metrics"
)

var loopback = netip.MustParseAddrPort("127.0.0.1:0")

func serve(t *testing.T, cfg realserver.Config) *realserver.Server {
	t.Helper()
	if !cfg.Listen.IsValid() {
		cfg.Listen = loopback
	}
	s, err := realserver.Listen(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	return s
}

func run(t *testing.T, cfg Config) *metrics.Result {
	t.Helper()
	res, err := Run(context.Background(), cfg)
	require.NoError(t, err)
	require.Equal(t, res.Scheduled, res.Requests(), "every scheduled request has an outcome")
	return res
}

// TestOpenLoopRate checks the schedule, not the machine: the generator must
// ask for rate × duration requests and send each of them, however late a
// busy machine makes it (lateness counts as latency).
func TestOpenLoopRate(t *testing.T) {
	s := serve(t, realserver.Config{Kind: wire.TCP, ID: "rs1"})
	for _, tc := range []struct {
		name    string
		arrival Arrival
		workers int
		tol     float64
	}{
		{"constant, 2000/s for 5 s, one worker: 10000 sends", Constant, 1, 0.01},
		{"constant, 2000/s for 5 s, two workers interleaved: 10000 sends", Constant, 2, 0.01},
		{"poisson, 2000/s for 5 s (seeded): 10000 sends on average", Poisson, 2, 0.03},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := run(t, Config{Target: s.Addr(), Kind: wire.TCP, Rate: 2000, Arrival: tc.arrival, Duration: 5 * time.Second, Workers: tc.workers, Seed: 7})
			assert.InEpsilon(t, 10000, res.Scheduled, tc.tol)
			// Sent only misses requests whose connection failed; on a busy
			// shared machine a few may time out, so this is not exact.
			assert.InEpsilon(t, res.Scheduled, res.Sent, 0.01, "an open loop sends what it scheduled: %v", res.Outcomes)
			assert.Equal(t, res.Outcomes[metrics.OK], res.Servers["rs1"].Connections, "a new connection per request")
		})
	}
}

// TestCoordinatedOmission stalls the server for one second of a three-second
// run. The open loop keeps its schedule, so a third of its requests wait for
// up to a second and the tail says so; a closed loop of one client just stops
// sending while it waits, and one slow request hides among thousands.
func TestCoordinatedOmission(t *testing.T) {
	// stalled runs cfg against s and hangs s from 1 s to 2 s into the run.
	stalled := func(t *testing.T, s *realserver.Server, cfg Config) *metrics.Result {
		type outcome struct {
			res *metrics.Result
			err error
		}
		done := make(chan outcome, 1)
		cfg.Target, cfg.Kind, cfg.Duration, cfg.Workers = s.Addr(), wire.HTTP, 3*time.Second, 1
		go func() {
			res, err := Run(context.Background(), cfg)
			done <- outcome{res, err}
		}()
		time.Sleep(time.Second) // the fault timeline, not a wait for state
		require.NoError(t, s.SetFault(realserver.Fault{Mode: realserver.Hang}))
		time.Sleep(time.Second)
		require.NoError(t, s.SetFault(realserver.Fault{}))
		o := <-done
		require.NoError(t, o.err)
		return o.res
	}
	open := stalled(t, serve(t, realserver.Config{Kind: wire.HTTP, ID: "rs1"}), Config{Rate: 300})
	closed := stalled(t, serve(t, realserver.Config{Kind: wire.HTTP, ID: "rs2"}), Config{Concurrency: 1})

	assert.Zero(t, open.Errors())
	assert.Zero(t, closed.Errors())
	assert.GreaterOrEqual(t, closed.Latency.Max(), int64(800_000), "the closed loop did see the stall (µs)")
	assert.Less(t, closed.Latency.ValueAtQuantile(90), int64(100_000), "… but its p90 hides it")
	assert.Greater(t, open.Latency.ValueAtQuantile(90), int64(500_000), "the open loop's p90 shows it")
	assert.Greater(t, open.Latency.ValueAtQuantile(75), int64(100_000))
}

func TestAttributionPerKind(t *testing.T) {
	for _, kind := range []wire.Kind{wire.HTTP, wire.TCP, wire.UDP} {
		for _, keep := range []bool{false, true} {
			name := kind.String() + "/new connection per request"
			if keep {
				name = kind.String() + "/keep-alive"
			}
			t.Run(name, func(t *testing.T) {
				s := serve(t, realserver.Config{Kind: kind, ID: "rs-" + kind.String(), ResponseBytes: 300})
				res := run(t, Config{Target: s.Addr(), Kind: kind, Concurrency: 4, Duration: 300 * time.Millisecond, KeepAlive: keep, Workers: 2, RequestBytes: 100})
				require.Zero(t, res.Errors(), "%v", res.Outcomes)
				sc := res.Servers["rs-"+kind.String()]
				require.NotNil(t, sc, "responses name their server: %v", res.Servers)
				assert.Len(t, res.Servers, 1)
				assert.Equal(t, res.Outcomes[metrics.OK], sc.Requests)
				if keep {
					assert.LessOrEqual(t, sc.Connections, uint64(4), "four clients keep four connections")
				} else {
					assert.Equal(t, sc.Requests, sc.Connections)
				}
				assert.Equal(t, s.Stats().Responses, sc.Requests, "the server agrees")
				if kind != wire.HTTP {
					assert.Equal(t, 300*sc.Requests, sc.Bytes, "whole responses of 300 bytes")
				}
			})
		}
	}
}

func TestErrorClasses(t *testing.T) {
	for _, tc := range []struct {
		name  string
		kind  wire.Kind
		fault realserver.Fault
		want  metrics.Class
	}{
		{"http refused when the listener is closed", wire.HTTP, realserver.Fault{Mode: realserver.Refuse}, metrics.Refused},
		{"tcp reset", wire.TCP, realserver.Fault{Mode: realserver.Reset}, metrics.Reset},
		{"http reset", wire.HTTP, realserver.Fault{Mode: realserver.Reset}, metrics.Reset},
		{"http error status", wire.HTTP, realserver.Fault{Mode: realserver.ErrorStatus, Status: 500}, metrics.Status},
		{"tcp error status in the prefix", wire.TCP, realserver.Fault{Mode: realserver.ErrorStatus}, metrics.Status},
		{"tcp hang times out", wire.TCP, realserver.Fault{Mode: realserver.Hang}, metrics.Timeout},
		{"udp hang times out", wire.UDP, realserver.Fault{Mode: realserver.Hang}, metrics.Timeout},
		{"udp refused (ICMP port unreachable)", wire.UDP, realserver.Fault{Mode: realserver.Refuse}, metrics.Refused},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := serve(t, realserver.Config{Kind: tc.kind, ID: "rs1"})
			require.NoError(t, s.SetFault(tc.fault))
			timeout := 3 * time.Second // generous: the machine is shared
			if tc.want == metrics.Timeout {
				timeout = 200 * time.Millisecond
			}
			res := run(t, Config{Target: s.Addr(), Kind: tc.kind, Rate: 100, Duration: 200 * time.Millisecond, Timeout: timeout, Workers: 1})
			assert.Equal(t, res.Requests(), res.Outcomes[tc.want], "%v", res.Outcomes)
			assert.Positive(t, res.Requests())
		})
	}
	t.Run("a short read when the server closes mid-response", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		defer ln.Close()
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				b := make([]byte, wire.PrefixLen)
				io.ReadFull(c, b[:wire.RequestLen]) // closing over unread bytes would reset
				wire.PutPrefix(b, 1000, 0, 200, "rs1")
				c.Write(b)
				c.Close()
			}
		}()
		res := run(t, Config{Target: netip.MustParseAddrPort(ln.Addr().String()), Kind: wire.TCP, Rate: 50, Duration: 200 * time.Millisecond, Workers: 1})
		assert.Equal(t, res.Requests(), res.Outcomes[metrics.ShortRead])
		assert.Equal(t, res.Requests(), res.Servers["rs1"].Requests, "a partial response still names its server")
	})
}

func TestSourceAddressesInTurn(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	var mu sync.Mutex
	seen := map[netip.Addr]int{}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			seen[netip.MustParseAddrPort(c.RemoteAddr().String()).Addr()]++
			mu.Unlock()
			b := make([]byte, wire.PrefixLen)
			io.ReadFull(c, b[:wire.RequestLen])
			wire.PutPrefix(b, wire.PrefixLen, 0, 200, "rs1")
			c.Write(b)
			c.Close()
		}
	}()
	srcs, err := ParseRange("127.0.0.10-127.0.0.13")
	require.NoError(t, err)
	res := run(t, Config{Target: netip.MustParseAddrPort(ln.Addr().String()), Kind: wire.TCP, Rate: 400, Duration: 100 * time.Millisecond, Workers: 1, Sources: srcs})
	require.Equal(t, uint64(40), res.Outcomes[metrics.OK], "%v", res.Outcomes)
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, map[netip.Addr]int{srcs[0]: 10, srcs[1]: 10, srcs[2]: 10, srcs[3]: 10}, seen, "each address in turn")
	per := map[string]uint64{"rs1": 10}
	at := func(a netip.Addr) netip.AddrPort {
		return netip.AddrPortFrom(a, netip.MustParseAddrPort(ln.Addr().String()).Port())
	}
	assert.Equal(t, map[netip.AddrPort]map[string]uint64{at(srcs[0]): per, at(srcs[1]): per, at(srcs[2]): per, at(srcs[3]): per}, res.Clients,
		"each client address's connections, with the port they went to, by the real server that answered")
}

func TestClientRateLimitedServerQueues(t *testing.T) {
	s := serve(t, realserver.Config{Kind: wire.TCP, ID: "rs1", ServiceTime: realserver.Dist{Mean: 20 * time.Millisecond}, MaxConcurrency: 1})
	res := run(t, Config{Target: s.Addr(), Kind: wire.TCP, Concurrency: 4, Duration: 400 * time.Millisecond, Workers: 1})
	// One request at a time, 20 ms each: the four clients queue behind each other.
	assert.GreaterOrEqual(t, res.Latency.ValueAtQuantile(50), int64(60_000), "µs: three ahead in the queue")
	assert.Zero(t, res.Errors())
}

func TestConfigErrorsNameTheField(t *testing.T) {
	target := netip.MustParseAddrPort("127.0.0.1:80")
	for _, tc := range []struct {
		cfg   Config
		field string
	}{
		{Config{Kind: wire.TCP, Rate: 1, Duration: time.Second}, "target"},
		{Config{Target: target, Duration: time.Second}, "rate"},
		{Config{Target: target, Rate: 1}, "duration"},
		{Config{Target: target, Rate: 1, Duration: time.Second, Kind: wire.UDP, RequestBytes: 70000}, "request-bytes"},
		{Config{Target: target, Rate: 1, Duration: time.Second, Sources: []netip.Addr{netip.MustParseAddr("::1")}}, "source-range"},
	} {
		err := tc.cfg.Check()
		var ce *ConfigError
		require.ErrorAs(t, err, &ce)
		assert.Equal(t, tc.field, ce.Field)
	}
}

func TestParsers(t *testing.T) {
	for in, want := range map[string]float64{"2000/s": 2000, "2000": 2000, "120/m": 2, "5/ms": 5000} {
		got, err := ParseRate(in)
		require.NoError(t, err)
		assert.InDelta(t, want, got, 1e-9, in)
	}
	for _, in := range []string{"", "0/s", "-1/s", "5/h", "x/s"} {
		_, err := ParseRate(in)
		assert.Error(t, err, in)
	}
	r, err := ParseRange("192.168.1.254-192.168.2.1")
	require.NoError(t, err)
	assert.Len(t, r, 4)
	_, err = ParseRange("10.0.0.5-10.0.0.1")
	assert.Error(t, err)
	_, err = ParseRange("10.0.0.0-10.1.0.0")
	assert.ErrorContains(t, err, "more than")
}

func TestOpenLoopKeepAliveReusesConnections(t *testing.T) {
	s := serve(t, realserver.Config{Kind: wire.HTTP, ID: "rs1"})
	res := run(t, Config{Target: s.Addr(), Kind: wire.HTTP, Rate: 500, Duration: time.Second, KeepAlive: true, Workers: 1})
	assert.InEpsilon(t, 500, res.Scheduled, 0.01)
	sc := res.Servers["rs1"]
	require.NotNil(t, sc)
	// Without reuse every request opens one (500). With it, requests that
	// arrive while all are busy open more: a few on a quiet machine, 56 seen
	// on a loaded 2-core one.
	assert.Less(t, sc.Connections, sc.Requests/4, "an idle connection serves the next arrival")
}

func TestIPv6Target(t *testing.T) {
	s, err := realserver.Listen(realserver.Config{Listen: netip.MustParseAddrPort("[::1]:0"), Kind: wire.TCP, ID: "rs6"})
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	res := run(t, Config{Target: s.Addr(), Kind: wire.TCP, Concurrency: 2, Duration: 200 * time.Millisecond, Workers: 1})
	assert.Zero(t, res.Errors(), "%v", res.Outcomes)
	assert.Positive(t, res.Servers["rs6"].Connections)
}

func TestProgressStreamsEveryIntervalInOrder(t *testing.T) {
	s := serve(t, realserver.Config{Kind: wire.TCP, ID: "rs1"})
	var got []int
	var ok uint64
	res := run(t, Config{Target: s.Addr(), Kind: wire.TCP, Rate: 400, Duration: 1200 * time.Millisecond, Workers: 2,
		Interval: 200 * time.Millisecond, Progress: func(i int, iv metrics.Interval) {
			got = append(got, i)
			ok += iv.Outcomes[metrics.OK]
			assert.Equal(t, iv.Outcomes[metrics.OK], iv.Connections["rs1"], "interval %d", i)
		}})
	require.GreaterOrEqual(t, len(got), 6, "1.2 s in 200 ms steps")
	for k, i := range got {
		assert.Equal(t, k, i, "in order, none skipped")
	}
	assert.Equal(t, res.Outcomes[metrics.OK], ok, "the live view adds up to the result")
	assert.Len(t, res.Series, len(got))
}
