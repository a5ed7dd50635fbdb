package fwdbench

import (
	"cmp"
	"fmt"
	"io"
	"net/netip"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"golang.org/x/sys/unix"

	"github.com/lvslab/lvslab/topo"
)

// Config sets what Run offers each dataplane.
type Config struct {
	Seconds  int `json:"seconds"`   // per measurement
	Workers  int `json:"workers"`   // the userspace forwarders' packet threads
	UDPLen   int `json:"udp_len"`   // UDP payload bytes of the packet-rate runs
	FixedPPS int `json:"fixed_pps"` // the fixed sub-saturation UDP load
	// Rounds interleaves the dataplanes this many times (A B C A B C …)
	// and reports each one's median, so a burst of load from elsewhere on
	// the machine does not land on one dataplane only.
	Rounds int `json:"rounds"`
	// Dataplanes to compare, in order (Dataplanes when empty).
	Dataplanes []string `json:"dataplanes"`
}

// DefaultConfig is what `lvslab bench` offers on a small machine.
var DefaultConfig = Config{Seconds: 3, Workers: 1, UDPLen: 18, FixedPPS: 20000, Rounds: 3}

// Metrics.
const (
	MetricTCP      = "tcp_bps"          // bulk TCP, one iperf3 stream from the client, offloads on
	MetricTCPResp  = "tcp_bps_response" // the same from the server: DR and TUN responses skip the balancer (the director's kernel routes them)
	MetricPPS      = "pps"              // small UDP datagrams, unlimited offered rate
	MetricPPSFixed = "pps_fixed"        // small UDP datagrams at Config.FixedPPS
	MetricCPS      = "cps"              // new TCP connections per second, one HTTP request each
)

// Row is one measurement, as bench.json lists it. CPU figures are in
// cores, averaged over the run: a userspace forwarder near 1.0 is a
// saturated worker.
type Row struct {
	Dataplane   string  `json:"dataplane"`
	Metric      string  `json:"metric"`
	Value       float64 `json:"value"`
	LossPercent float64 `json:"loss_percent"`
	BusyCPU     float64 `json:"busy_cpu"`               // the whole machine
	DirectorCPU float64 `json:"director_cpu,omitempty"` // the userspace forwarder (this process)
	LoadgenCPU  float64 `json:"loadgen_cpu"`            // iperf3 or wrk on the client
	// DirectorNsPerPacket is the director's CPU (this process) per packet
	// it forwarded, in nanoseconds: the robust measure on a shared
	// machine (the director alone; kernel work its system calls do for
	// the receiving namespace included).
	DirectorNsPerPacket float64 `json:"director_ns_per_packet,omitempty"`
	ServerCPU           float64 `json:"server_cpu,omitempty"` // the iperf3 server
}

// Machine is what a Run ran on.
type Machine struct {
	CPUs     int           `json:"cpus"`
	Kernel   string        `json:"kernel"`
	Go       string        `json:"go"`
	Features topo.Features `json:"features"`
	Offload  string        `json:"offload"`
	// LoadAvg is /proc/loadavg when the run began: on a shared machine
	// the neighbours' load is part of every number.
	LoadAvg string `json:"loadavg"`
}

// Report is one Run.
type Report struct {
	Machine Machine `json:"machine"`
	Config  Config  `json:"config"`
	Rows    []Row   `json:"rows"`
}

// Run builds a lab, measures every dataplane in Dataplanes under the same
// loads, tears the lab down and returns the rows. Progress goes to log.
func Run(cfg Config, log io.Writer) (rep *Report, err error) {
	l, err := NewLab("lvsbn")
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(log, "lab %s (namespaces %s, %s, %s)\n", l.Name, l.Client, l.Director, l.Server)
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
	web, err := l.StartHTTPServer()
	if err != nil {
		return nil, err
	}
	defer web.Stop()
	var u unix.Utsname
	unix.Uname(&u)
	rep = &Report{Config: cfg, Machine: Machine{Kernel: unix.ByteSliceToString(u.Release[:]), CPUs: runtime.NumCPU(),
		Go: runtime.Version(), Features: topo.Probe(),
		Offload: "veth defaults (tso, gso, tx checksum on); forwarders use PACKET_VNET_HDR", LoadAvg: loadAvg()}}
	loads := []struct {
		metric string
		drive  func(target netip.Addr) (Result, error)
	}{
		{MetricTCP, func(t netip.Addr) (Result, error) { return l.Drive(t, Load{Seconds: cfg.Seconds}) }},
		{MetricTCPResp, func(t netip.Addr) (Result, error) { return l.Drive(t, Load{Seconds: cfg.Seconds, Reverse: true}) }},
		{MetricPPS, func(t netip.Addr) (Result, error) {
			return l.Drive(t, Load{UDP: true, Seconds: cfg.Seconds, Len: cfg.UDPLen, Rate: "0"})
		}},
		{MetricPPSFixed, func(t netip.Addr) (Result, error) {
			return l.Drive(t, Load{UDP: true, Seconds: cfg.Seconds, Len: cfg.UDPLen, Rate: strconv.Itoa(cfg.FixedPPS * cfg.UDPLen * 8)})
		}},
		{MetricCPS, func(t netip.Addr) (Result, error) { return l.DriveCPS(t, cfg.Seconds) }},
	}
	dataplanes := cfg.Dataplanes
	if len(dataplanes) == 0 {
		dataplanes = Dataplanes
	}
	rep.Config.Dataplanes = dataplanes
	samples := map[[2]string][]Row{}
	for round := range max(cfg.Rounds, 1) {
		for _, dp := range dataplanes {
			a, err := l.Start(dp, cfg.Workers, nil)
			if err != nil {
				return rep, fmt.Errorf("%s: %w", dp, err)
			}
			for _, ld := range loads {
				before, counted := a.Forwarded()
				r, err := ld.drive(a.Target)
				if err != nil {
					a.Stop()
					return rep, fmt.Errorf("%s %s: %w", dp, ld.metric, err)
				}
				row := Row{Dataplane: dp, Metric: ld.metric, BusyCPU: r.BusyCPU, LossPercent: r.LossPercent,
					LoadgenCPU: r.LoadgenCPU, ServerCPU: r.ServerCPU}
				if dp != KernelRoute && dp != NftDNAT {
					row.DirectorCPU = r.DirectorCPU
				}
				if after, _ := a.Forwarded(); counted && after > before {
					row.DirectorNsPerPacket = r.DirectorCPUSeconds * 1e9 / float64(after-before)
				}
				switch ld.metric {
				case MetricTCP, MetricTCPResp:
					row.Value = r.BitsPerSecond
				case MetricCPS:
					row.Value = r.CPS
				default:
					row.Value = r.PPS
				}
				k := [2]string{dp, ld.metric}
				samples[k] = append(samples[k], row)
				fmt.Fprintf(log, "round %d  %-19s %-10s %14.0f  loss %5.2f%%  busy %.2f  forwarder %.2f  loadgen %.2f cores\n",
					round+1, dp, ld.metric, row.Value, row.LossPercent, row.BusyCPU, row.DirectorCPU, row.LoadgenCPU)
			}
			if err := a.Stop(); err != nil {
				return rep, fmt.Errorf("%s: %w", dp, err)
			}
			if (dp == LvslabNAT || dp == LvslabDR || dp == LvslabTUN) && a.Engine.In == 0 {
				// The loads passed, so something other than the director
				// carried them: the comparison would be a lie.
				return rep, fmt.Errorf("%s: the director forwarded no packet", dp)
			}
		}
	}
	for _, dp := range dataplanes {
		for _, ld := range loads {
			rep.Rows = append(rep.Rows, median(samples[[2]string{dp, ld.metric}]))
		}
	}
	return rep, nil
}

func loadAvg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	return strings.TrimSpace(string(b))
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
	fmt.Fprintln(tw, "dataplane\tmetric\tvalue\t× kernel-route\t× nft-dnat\tloss %\tbusy cores\tforwarder cores\tloadgen cores\tforwarder µs/op\tdirector µs/pkt\t")
	for _, row := range r.Rows {
		ratio := func(base string) string {
			if b, ok := r.Value(base, row.Metric); ok && b.Value > 0 {
				return fmt.Sprintf("%.2f", row.Value/b.Value)
			}
			return "-"
		}
		perPkt := "-"
		if row.Metric != MetricTCP && row.Metric != MetricTCPResp && row.DirectorCPU > 0 && row.Value > 0 {
			perPkt = fmt.Sprintf("%.2f", row.DirectorCPU/row.Value*1e6)
		}
		perFwd := "-"
		if row.DirectorNsPerPacket > 0 {
			perFwd = fmt.Sprintf("%.2f", row.DirectorNsPerPacket/1e3)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%.2f\t%.2f\t%.2f\t%.2f\t%s\t%s\t\n", row.Dataplane, row.Metric, human(row.Metric, row.Value),
			ratio(KernelRoute), ratio(NftDNAT), row.LossPercent, row.BusyCPU, row.DirectorCPU, row.LoadgenCPU, perPkt, perFwd)
	}
	tw.Flush()
	return b.String()
}

func human(metric string, v float64) string {
	switch metric {
	case MetricTCP, MetricTCPResp:
		return fmt.Sprintf("%.2f Gbit/s", v/1e9)
	case MetricCPS:
		return fmt.Sprintf("%.0f conn/s", v)
	}
	return fmt.Sprintf("%.0f pps", v)
}
