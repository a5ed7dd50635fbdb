package scheduler

import (
	"fmt"
	"net/netip"
	"syscall"
	"testing"
	"time"
)

// BenchmarkSchedule measures one pick of every scheduler over 10, 100 and
// 1000 dests with mixed weights and loads. Flows cycle through 1024 clients
// and 4 VIPs, so lblc/lblcr run on cache hits as they do in steady state.
func BenchmarkSchedule(b *testing.B) {
	flows := make([]Flow, 1024)
	for i := range flows {
		flows[i] = Flow{Proto: 6, Src: netip.AddrFrom4([4]byte{192, 168, byte(i >> 8), byte(i)}), SrcPort: uint16(10000 + i),
			Dst: netip.AddrFrom4([4]byte{10, 0, 0, byte(i % 4)}), DstPort: 80}
	}
	now := time.Unix(1e9, 0)
	for _, name := range Names {
		for _, n := range []int{10, 100, 1000} {
			b.Run(fmt.Sprintf("%s/%d", name, n), func(b *testing.B) {
				svc := &Service{Flags: FlagSched1}
				for i := range n {
					d := &Dest{Addr: netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)}), Port: 80}
					d.SetWeight(int32(1+i%5), true)
					d.ActiveConns, d.InactConns = int32(i%7), int32(i%13)
					svc.AddDest(d)
				}
				if err := svc.SetScheduler(name); err != nil {
					b.Fatal(err)
				}
				for _, f := range flows[:8] {
					svc.Schedule(f, now) // warm the caches
				}
				i := 0
				cpu0 := cpuTime()
				for b.Loop() {
					if svc.Schedule(flows[i&1023], now) == nil {
						b.Fatal("no destination")
					}
					i++
				}
				// CPU time too: the machines this runs on are shared.
				b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
			})
		}
	}
}

// BenchmarkConnectionLifecycle measures what one connection costs the
// scheduler side of a director: the pick, then the bind, the move to active
// and back, and the unbind that keep a load index current.
func BenchmarkConnectionLifecycle(b *testing.B) {
	f := Flow{Proto: 6, Src: netip.MustParseAddr("192.168.0.1"), SrcPort: 10000, Dst: netip.MustParseAddr("10.0.0.100"), DstPort: 80}
	for _, name := range indexedSchedulers {
		for _, n := range []int{10, 100, 1000} {
			b.Run(fmt.Sprintf("%s/%d", name, n), func(b *testing.B) {
				svc := &Service{}
				if err := svc.SetScheduler(name); err != nil {
					b.Fatal(err)
				}
				for i := range n {
					d := &Dest{Addr: netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)}), Port: 80}
					d.SetWeight(int32(1+i%5), true)
					svc.AddDest(d)
					for range i % 7 {
						d.BindConn()
						d.SetActive(true)
					}
				}
				for b.Loop() {
					d := svc.Schedule(f, time.Unix(0, 0))
					d.BindConn()
					d.SetActive(true)
					d.SetActive(false)
					d.UnbindConn(false)
				}
			})
		}
	}
}

// cpuTime is the process's user and system time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
