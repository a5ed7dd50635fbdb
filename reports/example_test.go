package reports_test

import (
	"context"
	"encoding/json"
	"log"
	"net/netip"
	"time"

	"github.com/lvslab/lvslab/loadgen"
	"github.com/lvslab/lvslab/loadgen/wire"
	"github.com/lvslab/lvslab/reports"
	"github.com/lvslab/lvslab/reports/metrics"
)

// The scenario runner's path: each client node runs a phase (in its agent)
// and ships its Result as JSON; the runner merges them, adds the director's
// counters, the faults and the expectations, and writes the report set.
func Example_runner() {
	ctx := context.Background()
	cfg := loadgen.Config{
		Target: netip.MustParseAddrPort("192.168.1.110:80"), Kind: wire.HTTP,
		Rate: 2000, Duration: 30 * time.Second, Sources: mustRange("192.168.1.200-192.168.1.250"),
	}

	// In each client's agent:
	res, err := loadgen.Run(ctx, cfg)
	if err != nil {
		log.Fatal(err)
	}
	wireForm, _ := json.Marshal(res)

	// In the runner, for every client of the phase:
	var fromClient, total metrics.Result
	if err := json.Unmarshal(wireForm, &fromClient); err != nil {
		log.Fatal(err)
	}
	total = *metrics.NewResult(fromClient.Start, fromClient.Interval)
	if err := total.Merge(&fromClient); err != nil {
		log.Fatal(err)
	}

	r := reports.New("nat-wlc-three-servers")
	r.Environment = map[string]string{"packet_io": "afpacket", "ipip": "userspace", "netem": "absent"}
	r.AddLoad(reports.Phase{Name: "steady", From: "client", Target: cfg.Target.String(), Kind: "http",
		Rate: cfg.Rate, Duration: cfg.Duration, Weights: map[string]float64{"rs1": 3, "rs2": 2, "rs3": 1}}, &total)
	r.Services = append(r.Services, reports.NewService("192.168.1.110:80", "tcp", "wlc", []reports.RealServer{
		{Node: "rs1", Address: "10.1.1.2:80", Forward: "nat", Weight: 3, Connections: 29950},
		{Node: "rs2", Address: "10.1.1.3:80", Forward: "nat", Weight: 2, Connections: 20010},
		{Node: "rs3", Address: "10.1.1.4:80", Forward: "nat", Weight: 1, Connections: 10040},
	}))
	detected := 0.9
	r.Faults = append(r.Faults, reports.Fault{AtS: 10, Action: "kill", Target: "rs2", DetectedAfterS: &detected})
	r.Expectations = append(r.Expectations, reports.Expectation{Text: "errors < 1%", Value: r.Load.ErrorRate, Passed: r.Load.ErrorRate < 0.01})
	r.Finish()
	if _, err := reports.WriteAll("out", r); err != nil {
		log.Fatal(err)
	}
}

func mustRange(s string) []netip.Addr {
	a, err := loadgen.ParseRange(s)
	if err != nil {
		log.Fatal(err)
	}
	return a
}
