package loadgen

import (
	"context"
	"net/netip"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/lvslab/lvslab/loadgen/wire"
)

func TestExternal(t *testing.T) {
	tgt := os.Getenv("EXT_TARGET")
	if tgt == "" {
		t.Skip()
	}
	for _, ka := range []bool{false, true} {
		var r0 syscall.Rusage
		syscall.Getrusage(0, &r0)
		start := time.Now()
		res, err := Run(context.Background(), Config{Target: netip.MustParseAddrPort(tgt), Kind: wire.HTTP, Concurrency: 4, Duration: 3 * time.Second, KeepAlive: ka, Workers: 1})
		if err != nil {
			t.Fatal(err)
		}
		el := time.Since(start)
		var r1 syscall.Rusage
		syscall.Getrusage(0, &r1)
		cpu := time.Duration(syscall.TimevalToNsec(r1.Utime)-syscall.TimevalToNsec(r0.Utime)) + time.Duration(syscall.TimevalToNsec(r1.Stime)-syscall.TimevalToNsec(r0.Stime))
		t.Logf("ka=%v req=%d rps=%.0f cpu=%v per-core=%.0f out=%v p50=%d", ka, res.Requests(), float64(res.Requests())/el.Seconds(), cpu, float64(res.Requests())/cpu.Seconds(), res.Outcomes, res.Latency.ValueAtQuantile(50))
	}
}
