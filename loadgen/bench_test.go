package loadgen

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/lvslab/lvslab/loadgen/realserver"
	"github.com/lvslab/lvslab/loadgen/wire"
)

// TestMain doubles as the benchmark's real server: with LVSLAB_BENCH_SERVE
// set, the test binary serves until its stdin closes, in a process of its
// own, so the CPU each client spends can be told apart from the server's.
func TestMain(m *testing.M) {
	if kind := os.Getenv("LVSLAB_BENCH_SERVE"); kind != "" {
		os.Exit(benchServe(kind))
	}
	os.Exit(m.Run())
}

func benchServe(kind string) int {
	k, err := wire.ParseKind(kind)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	s, err := realserver.Listen(realserver.Config{Listen: netip.MustParseAddrPort("127.0.0.1:0"), Kind: k, ID: "rs1", ResponseBytes: 100})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println(s.Addr())
	io.Copy(io.Discard, os.Stdin)
	s.Close()
	return 0
}

func startBenchServer(b *testing.B, kind wire.Kind) netip.AddrPort {
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "LVSLAB_BENCH_SERVE="+kind.String())
	stdin, err := cmd.StdinPipe()
	require.NoError(b, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(b, err)
	cmd.Stderr = os.Stderr
	require.NoError(b, cmd.Start())
	b.Cleanup(func() {
		stdin.Close()
		cmd.Wait()
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	require.NoError(b, err)
	ap, err := netip.ParseAddrPort(line[:len(line)-1])
	require.NoError(b, err)
	return ap
}

// measure is one client run: requests done, wall time, and the client's CPU time.
type measure struct {
	requests uint64
	wall     time.Duration
	cpu      time.Duration
}

func (m measure) rate() float64    { return float64(m.requests) / m.wall.Seconds() }
func (m measure) perCore() float64 { return float64(m.requests) / m.cpu.Seconds() }

func add(a, b measure) measure {
	return measure{a.requests + b.requests, a.wall + b.wall, a.cpu + b.cpu}
}

func selfCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

var wrkRequests = regexp.MustCompile(`(\d+) requests in ([0-9.]+)(us|ms|s|m)`)

func runWrk(b *testing.B, wrk string, ap netip.AddrPort, conns int, d time.Duration, keepalive bool) measure {
	args := []string{"-t1", "-c" + strconv.Itoa(conns), "-d" + strconv.Itoa(int(d.Seconds())) + "s"}
	if !keepalive {
		args = append(args, "-H", "Connection: close")
	}
	cmd := exec.Command(wrk, append(args, "http://"+ap.String()+"/")...)
	out, err := cmd.Output()
	require.NoError(b, err, "%s", out)
	m := wrkRequests.FindSubmatch(out)
	require.NotNil(b, m, "wrk said: %s", out)
	n, _ := strconv.ParseUint(string(m[1]), 10, 64)
	v, _ := strconv.ParseFloat(string(m[2]), 64)
	unit := map[string]time.Duration{"us": time.Microsecond, "ms": time.Millisecond, "s": time.Second, "m": time.Minute}[string(m[3])]
	st := cmd.ProcessState
	return measure{requests: n, wall: time.Duration(v * float64(unit)), cpu: st.UserTime() + st.SystemTime()}
}

func runOurs(b *testing.B, ap netip.AddrPort, kind wire.Kind, conns int, d time.Duration, keepalive bool) (measure, float64) {
	var ms0, ms1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms0)
	cpu0, t0 := selfCPU(), time.Now()
	res, err := Run(context.Background(), Config{Target: ap, Kind: kind, Concurrency: conns, Duration: d, KeepAlive: keepalive, Workers: 1})
	wall, cpu := time.Since(t0), selfCPU()-cpu0
	require.NoError(b, err)
	runtime.ReadMemStats(&ms1)
	require.Zero(b, res.Errors(), "%v", res.Outcomes)
	n := res.Requests()
	return measure{requests: n, wall: wall, cpu: cpu}, float64(ms1.Mallocs-ms0.Mallocs) / float64(n)
}

// BenchmarkVersusWrk measures new connections and keep-alive requests per
// second against the built-in HTTP server (in its own process), side by side
// with wrk (one thread each, the same connection count, alternating rounds
// in the same run), plus raw tcp new connections. "per core" is requests
// per CPU-second the client used, kernel time included: on loopback the
// client's system calls also run the server side's receive path.
//
//	go test -run '^$' -bench VersusWrk -benchtime 1x ./loadgen/
func BenchmarkVersusWrk(b *testing.B) {
	wrk, err := exec.LookPath("wrk")
	if err != nil {
		b.Skip("wrk is not installed (Debian package wrk)")
	}
	const (
		conns  = 8
		rounds = 3
		d      = 3 * time.Second
	)
	httpAddr := startBenchServer(b, wire.HTTP)
	tcpAddr := startBenchServer(b, wire.TCP)
	for range b.N {
		for _, keep := range []bool{false, true} {
			mode := "new connection per request"
			if keep {
				mode = "keep-alive"
			}
			var w, o measure
			var allocs float64
			for range rounds {
				w = add(w, runWrk(b, wrk, httpAddr, conns, d, keep))
				m, a := runOurs(b, httpAddr, wire.HTTP, conns, d, keep)
				o, allocs = add(o, m), a
			}
			b.Logf("http, %s, %d connections, %d×%v:", mode, conns, rounds, d)
			b.Logf("  wrk     %9.0f req/s  %9.0f req/s per core", w.rate(), w.perCore())
			b.Logf("  lvslab  %9.0f req/s  %9.0f req/s per core  (%.2f× wrk's rate, %.2f× per core, %.3f allocs/request)",
				o.rate(), o.perCore(), o.rate()/w.rate(), o.perCore()/w.perCore(), allocs)
			tag := map[bool]string{false: "newconn", true: "keepalive"}[keep]
			b.ReportMetric(o.rate()/w.rate(), "x-wrk-"+tag)
			b.ReportMetric(o.perCore(), "req/cpu-s-"+tag)
			b.ReportMetric(w.perCore(), "wrk-req/cpu-s-"+tag)
		}
		var o measure
		for range rounds {
			m, _ := runOurs(b, tcpAddr, wire.TCP, conns, d, false)
			o = add(o, m)
		}
		b.Logf("tcp, new connection per request, %d connections: lvslab %.0f conn/s, %.0f conn/s per core", conns, o.rate(), o.perCore())
		b.ReportMetric(o.perCore(), "tcp-conn/cpu-s")
	}
}
