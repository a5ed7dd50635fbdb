package fwdbench

import (
	"cmp"
	"fmt"
	"io"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"golang.org/x/sys/unix"
)

// Config sets what Run offers each dataplane.
type Config struct {
	Seconds  int // per measurement
	Workers  int // userspace forwarder threads
	UDPLen   int // UDP payload bytes of the packet-rate runs
	FixedPPS int // the fixed sub-saturation UDP load
	// Rounds interleaves the dataplanes this many times (A B C A B C …)
	// and reports each one's median, so a burst of load from elsewhere on
	// the machine does not land on one dataplane only.
	Rounds int
}

// DefaultConfig is what `lvslab bench` would offer on a small machine.
var DefaultConfig = Config{Seconds: 3, Workers: 1, UDPLen: 18, FixedPPS: 20000, Rounds: 3}

// Metrics.
const (
	MetricTCP      = "tcp_bps"   // bulk TCP, one iperf3 stream, offloads on
	MetricPPS      = "pps"       // small UDP datagrams, unlimited offered rate
	MetricPPSFixed = "pps_fixed" // small UDP datagrams at Config.FixedPPS
)

// Row is one measurement, as bench.json lists it.
type Row struct {
	Dataplane   string  `json:"dataplane"`
	Metric      string  `json:"metric"`
	Value       float64 `json:"value"`
	LossPercent float64 `json:"loss_percent,omitempty"`
	BusyCPU     float64 `json:"busy_cpu"`               // machine, in cores
	DirectorCPU float64 `json:"director_cpu,omitempty"` // the userspace forwarder, in cores
}

// Report is one Run.
type Report struct {
	Kernel  string `json:"kernel"`
	CPUs    int    `json:"cpus"`
	Config  Config `json:"config"`
	Rows    []Row  `json:"rows"`
	Offload string `json:"offload"`
}

// Run builds a lab, measures every dataplane in Dataplanes under the same
// loads, tears the lab down and returns the rows. Progress goes to log.
func Run(cfg Config, log io.Writer) (rep *Report, err error) {
	l, err := NewLab("lvsbn")
	if err != nil {
		return nil, err
	}
	defer func() {
		if cerr := l.Close(); err == nil {
			err = cerr
		}
	}()
	srv, err := l.StartServer()
	if err != nil {
		return nil, err
	}
	defer srv.Stop()
	var u unix.Utsname
	unix.Uname(&u)
	rep = &Report{Kernel: unix.ByteSliceToString(u.Release[:]), CPUs: runtime.NumCPU(), Config: cfg,
		Offload: "veth defaults (tso, gso, tx checksum on); forwarder uses PACKET_VNET_HDR"}
	loads := []struct {
		metric string
		load   Load
	}{
		{MetricTCP, Load{Seconds: cfg.Seconds}},
		{MetricPPS, Load{UDP: true, Seconds: cfg.Seconds, Len: cfg.UDPLen, Rate: "0"}},
		{MetricPPSFixed, Load{UDP: true, Seconds: cfg.Seconds, Len: cfg.UDPLen, Rate: strconv.Itoa(cfg.FixedPPS * cfg.UDPLen * 8)}},
	}
	samples := map[[2]string][]Row{}
	for round := range max(cfg.Rounds, 1) {
		for _, dp := range Dataplanes {
			a, err := l.Start(dp, cfg.Workers, nil)
			if err != nil {
				return rep, fmt.Errorf("%s: %w", dp, err)
			}
			for _, ld := range loads {
				r, err := l.Drive(a.Target, ld.load)
				if err != nil {
					a.Stop()
					return rep, fmt.Errorf("%s %s: %w", dp, ld.metric, err)
				}
				row := Row{Dataplane: dp, Metric: ld.metric, BusyCPU: r.BusyCPU, LossPercent: r.LossPercent}
				if dp != KernelRoute && dp != NftDNAT {
					row.DirectorCPU = r.DirectorCPU
				}
				row.Value = r.PPS
				if ld.metric == MetricTCP {
					row.Value = r.BitsPerSecond
				}
				k := [2]string{dp, ld.metric}
				samples[k] = append(samples[k], row)
				fmt.Fprintf(log, "round %d  %-15s %-10s %14.0f  loss %5.2f%%  busy %.2f cores\n", round+1, dp, ld.metric, row.Value, row.LossPercent, row.BusyCPU)
			}
			if err := a.Stop(); err != nil {
				return rep, fmt.Errorf("%s: %w", dp, err)
			}
		}
	}
	for _, dp := range Dataplanes {
		for _, ld := range loads {
			rep.Rows = append(rep.Rows, median(samples[[2]string{dp, ld.metric}]))
		}
	}
	return rep, nil
}

// median returns the row with the median value (the lower middle one for
// an even count).
func median(rows []Row) Row {
	s := slices.Clone(rows)
	slices.SortFunc(s, func(a, b Row) int { return cmp.Compare(a.Value, b.Value) })
	return s[(len(s)-1)/2]
}

// Value returns the row for dataplane and metric.
func (r *Report) Value(dataplane, metric string) (Row, bool) {
	for _, row := range r.Rows {
		if row.Dataplane == dataplane && row.Metric == metric {
			return row, true
		}
	}
	return Row{}, false
}

// Table renders the report with each value's ratio to kernel routing and
// to nftables DNAT.
func (r *Report) Table() string {
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "dataplane\tmetric\tvalue\t× kernel-route\t× nft-dnat\tloss %\tbusy cores\tforwarder cores\tforwarder µs/pkt\t")
	for _, row := range r.Rows {
		ratio := func(base string) string {
			if b, ok := r.Value(base, row.Metric); ok && b.Value > 0 {
				return fmt.Sprintf("%.2f", row.Value/b.Value)
			}
			return "-"
		}
		perPkt := "-"
		if row.Metric != MetricTCP && row.DirectorCPU > 0 && row.Value > 0 {
			perPkt = fmt.Sprintf("%.2f", row.DirectorCPU/row.Value*1e6)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%.2f\t%.2f\t%.2f\t%s\t\n", row.Dataplane, row.Metric, human(row.Metric, row.Value),
			ratio(KernelRoute), ratio(NftDNAT), row.LossPercent, row.BusyCPU, row.DirectorCPU, perPkt)
	}
	tw.Flush()
	return b.String()
}

func human(metric string, v float64) string {
	if metric == MetricTCP {
		return fmt.Sprintf("%.2f Gbit/s", v/1e9)
	}
	return fmt.Sprintf("%.0f pps", v)
}
