package fwdbench

import (
	"fmt"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestRunMeasuresEveryDataplane runs the harness briefly: every dataplane
// carries every load (values and ratios are for benchmarks, not asserted).
func TestRunMeasuresEveryDataplane(t *testing.T) {
	needLab(t)
	if testing.Short() {
		t.Skip("drives traffic for several seconds")
	}
	rep, err := Run(Config{Seconds: 1, Workers: 1, UDPLen: 18, FixedPPS: 5000, Rounds: 1, Dataplanes: AllDataplanes}, testWriter{t})
	require.NoError(t, err)
	for _, dp := range AllDataplanes {
		for _, m := range []string{MetricTCP, MetricTCPResp, MetricPPS, MetricPPSFixed, MetricCPS} {
			row, ok := rep.Value(dp, m)
			if assert.True(t, ok, "%s %s", dp, m) {
				assert.Positive(t, row.Value, "%s %s", dp, m)
			}
		}
	}
	t.Log("\n" + rep.Table())
}

func TestMedianPicksTheMiddleRun(t *testing.T) {
	rows := []Row{{Value: 9}, {Value: 1}, {Value: 5, BusyCPU: 1.5}}
	assert.Equal(t, Row{Value: 5, BusyCPU: 1.5}, median(rows))
	assert.Equal(t, 1.0, median(rows[:2]).Value, "the lower middle of two")
}

// BenchmarkForwarding is the forwarding comparison as a Go benchmark:
// go test -run '^$' -bench Forwarding ./dataplane/fwdbench.
func BenchmarkForwarding(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root")
	}
	for b.Loop() {
		rep, err := Run(DefaultConfig, os.Stderr)
		if err != nil {
			b.Fatal(err)
		}
		for _, row := range rep.Rows {
			base, _ := rep.Value(KernelRoute, row.Metric)
			if base.Value > 0 {
				b.ReportMetric(row.Value/base.Value, row.Dataplane+"/"+row.Metric+"-ratio")
			}
		}
		fmt.Fprintln(os.Stderr, rep.Table()) // b.Log would cut it at 10 lines
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }
