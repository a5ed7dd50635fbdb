package fwdbench

import (
	"flag"
	"net/netip"
	"os"
	"testing"
)

var (
	benchWorkers = flag.Int("director.workers", 1, "BenchmarkDirector: the engine's packet workers")
	benchSeconds = flag.Int("director.seconds", 3, "BenchmarkDirector: each load's length")
)

// BenchmarkDirector drives each load through the director (dataplane/engine)
// in each forwarding method, in one lab, and reports the director's CPU per
// packet it forwarded: cpu-ns/pkt is this process's user and system time
// (the engine's work and the kernel's on its system calls, which on veth
// includes the receiving namespace's softirq) over the engine's In+Out.
// That measure holds on a machine other engineers share, where the rates
// (pps, Gbit/s, conn/s: what the receiver got) do not. Run it under perf
// or with -cpuprofile to see where the time goes:
//
//	go test -run '^$' -bench 'Director/lvslab-nat/pps' -benchtime 1x ./dataplane/fwdbench
func BenchmarkDirector(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root to build network namespaces")
	}
	l, err := NewLab("lvsbd")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	srv, err := l.StartServer()
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Stop()
	web, err := l.StartHTTPServer()
	if err != nil {
		b.Fatal(err)
	}
	defer web.Stop()
	secs := *benchSeconds
	loads := []struct {
		metric string
		drive  func(netip.Addr) (Result, error)
	}{
		{MetricPPSFixed, func(t netip.Addr) (Result, error) {
			return l.Drive(t, Load{UDP: true, Seconds: secs, Len: 18, Rate: "2880000"}) // 20 kpps
		}},
		{MetricPPS, func(t netip.Addr) (Result, error) {
			return l.Drive(t, Load{UDP: true, Seconds: secs, Len: 18, Rate: "0"})
		}},
		{MetricTCP, func(t netip.Addr) (Result, error) { return l.Drive(t, Load{Seconds: secs}) }},
		{MetricTCPResp, func(t netip.Addr) (Result, error) { return l.Drive(t, Load{Seconds: secs, Reverse: true}) }},
		{MetricCPS, func(t netip.Addr) (Result, error) { return l.DriveCPS(t, secs) }},
	}
	for _, dp := range []string{LvslabNAT, LvslabDR, LvslabTUN} {
		for _, ld := range loads {
			b.Run(dp+"/"+ld.metric, func(b *testing.B) {
				a, err := l.Start(dp, *benchWorkers, nil)
				if err != nil {
					b.Fatal(err)
				}
				var (
					cpu, value float64
					pkts       uint64
				)
				for b.Loop() {
					before := a.eng.Counters()
					self := selfCPU()
					r, err := ld.drive(a.Target)
					if err != nil {
						a.Stop()
						b.Fatal(err)
					}
					cpu += selfCPU() - self
					after := a.eng.Counters()
					pkts += after.In + after.Out - before.In - before.Out
					b.Logf("in %d out %d frames %d dropped %d noroute %d", after.In-before.In, after.Out-before.Out,
						after.Frames-before.Frames, after.Dropped-before.Dropped, after.NoRoute-before.NoRoute)
					switch ld.metric {
					case MetricTCP, MetricTCPResp:
						value += r.BitsPerSecond / 1e9
					case MetricCPS:
						value += r.CPS
					default:
						value += r.PPS
					}
				}
				if err := a.Stop(); err != nil {
					b.Fatal(err)
				}
				if pkts > 0 {
					b.ReportMetric(cpu*1e9/float64(pkts), "cpu-ns/pkt")
				}
				unit := map[string]string{MetricTCP: "Gbit/s", MetricTCPResp: "Gbit/s", MetricCPS: "conn/s"}[ld.metric]
				if unit == "" {
					unit = "pps"
				}
				b.ReportMetric(value/float64(b.N), unit)
				b.ReportMetric(0, "ns/op")
			})
		}
	}
}
