// Package reports turns measurements into the report set a run leaves
// behind: report.json (the stable contract of spec/scenario.md), report.md
// for CI logs and pull requests, and a self-contained report.html with
// gonum/plot plots (SVG inline, PNG files beside it).
//
// The model is filled in parts: loadgen results (AddLoad), director
// counters per service (NewService), faults, expectations and the
// environment from the scenario runner. Every renderer shows what is there
// and leaves out what is not. reports runs nothing and imports no dataplane.
package reports

import (
	"cmp"
	"maps"
	"math"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/lvslab/lvslab/reports/metrics"
)

// Report is one run's report. JSON names are the stable contract: add
// fields, never rename them.
type Report struct {
	Scenario     string            `json:"scenario"`
	Description  string            `json:"description,omitempty"`
	Passed       bool              `json:"passed"`
	DurationS    float64           `json:"duration_s"`
	Environment  map[string]string `json:"environment,omitempty"` // packet_io, ipip, netem, kernel, …
	Manifest     map[string]string `json:"manifest,omitempty"`    // lvslab version, command line, seed, …
	Load         *Load             `json:"load,omitempty"`        // all phases together
	Phases       []Load            `json:"phases,omitempty"`      // each phase, when there are several
	Services     []Service         `json:"services"`
	Faults       []Fault           `json:"faults"`
	Expectations []Expectation     `json:"expectations"`
	Timeseries   Timeseries        `json:"timeseries"`
	// Health is what the health checks saw of each checked real server.
	Health []Health `json:"health,omitempty"`
	// Director is what the director's dataplane engine counted.
	Director *Director `json:"director,omitempty"`

	loads []phaseResult // what AddLoad was given, to merge again on the next phase
}

// Director is what a director's dataplane engine counted over the run, as
// lvslab stats --json shows it: the packets it handled, IPv4 reassembly,
// and every packet it did not forward, by reason.
type Director struct {
	Node       string            `json:"node"`
	Counters   map[string]uint64 `json:"counters"`             // frames, in, out, icmp_in, icmp_out, replies, segmented, fragmented
	Reassembly map[string]uint64 `json:"reassembly,omitempty"` // fragments, reassembled, timeout, overlap, …
	Drops      map[string]uint64 `json:"drops"`                // parse.REASON, defrag.REASON, dropped, no_route, unsendable, socket.IFACE
}

// Load is what the client side measured over one phase (or all of them).
type Load struct {
	Name        string  `json:"name,omitempty"`
	From        string  `json:"from,omitempty"` // client node(s)
	Target      string  `json:"target,omitempty"`
	Kind        string  `json:"kind,omitempty"`
	Mode        string  `json:"mode,omitempty"` // "open" (rate) or "closed" (concurrency)
	Arrival     string  `json:"arrival,omitempty"`
	Rate        float64 `json:"rate,omitempty"`
	Concurrency int     `json:"concurrency,omitempty"`
	KeepAlive   bool    `json:"keepalive"`
	Sources     int     `json:"source_addresses,omitempty"`
	DurationS   float64 `json:"duration_s"`

	Scheduled     uint64            `json:"scheduled"`
	Sent          uint64            `json:"sent"`
	Requests      uint64            `json:"requests"`
	Errors        uint64            `json:"errors"`
	ErrorRate     float64           `json:"error_rate"`
	ErrorsByClass map[string]uint64 `json:"errors_by_class"`
	ThroughputRPS float64           `json:"throughput_rps"` // successful responses per second
	ThroughputBPS float64           `json:"throughput_bps"` // response bits per second
	BytesSent     uint64            `json:"bytes_sent"`
	BytesReceived uint64            `json:"bytes_received"`
	LatencyMS     Latency           `json:"latency_ms"`
	LatencyCDF    []CDFPoint        `json:"latency_cdf,omitempty"`
	Realservers   []ServerLoad      `json:"realservers"`
	Fairness      *Fairness         `json:"fairness,omitempty"`
	// Clients is where each client source address's connections went;
	// only connections bound to a source address (a client node's
	// source_addresses) are counted.
	Clients *Clients `json:"clients,omitempty"`
}

// Clients shows persistence from the client side: a persistent service
// keeps each client address on one real server, across connections and,
// for a port-0 or fwmark service, across ports.
type Clients struct {
	Addresses int `json:"addresses"`
	// PersistenceViolations counts the client addresses whose connections
	// reached more than one real server.
	PersistenceViolations int `json:"persistence_violations"`
	// MaxServersPerClient is the most real servers one client address reached.
	MaxServersPerClient int          `json:"max_servers_per_client"`
	PerClient           []ClientLoad `json:"per_client"`
}

// ClientLoad is one client address's new connections by the real server
// that answered them, in all and by the port they went to.
type ClientLoad struct {
	Address     string                       `json:"address"`
	Realservers map[string]uint64            `json:"realservers"`
	ByPort      map[uint16]map[string]uint64 `json:"by_port"`
}

// Latency are percentiles of successful responses, in milliseconds, from
// the intended send time.
type Latency struct {
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p999"`
	Max  float64 `json:"max"`
	Mean float64 `json:"mean"`
}

// CDFPoint is one point of the latency distribution.
type CDFPoint struct {
	Percentile float64 `json:"percentile"`
	MS         float64 `json:"ms"`
}

// ServerLoad is what the client side saw one real server serve, named by
// its responses ("" when a response named nobody).
type ServerLoad struct {
	ID          string  `json:"id"`
	Connections uint64  `json:"connections"`
	Requests    uint64  `json:"requests"`
	Bytes       uint64  `json:"bytes"`
	Share       float64 `json:"share"`
	Weight      float64 `json:"weight"`
	WeightShare float64 `json:"weight_share"`
}

// Service is one virtual service with the director's per-destination counters.
type Service struct {
	VIP         string       `json:"vip"` // empty for a firewall-mark service without an address
	Protocol    string       `json:"protocol"`
	FWMark      uint32       `json:"fwmark,omitempty"`
	Scheduler   string       `json:"scheduler"`
	Realservers []RealServer `json:"realservers"`
	Fairness    Fairness     `json:"fairness"`
}

// RealServer is a destination of a service as the director counted it.
type RealServer struct {
	Node        string  `json:"node"`
	Address     string  `json:"address"`
	Forward     string  `json:"forward"`
	Weight      int     `json:"weight"`
	Connections uint64  `json:"connections"`
	Share       float64 `json:"share"`
	WeightShare float64 `json:"weight_share"`
	InPackets   uint64  `json:"in_packets"`
	OutPackets  uint64  `json:"out_packets"`
	InBytes     uint64  `json:"in_bytes"`
	OutBytes    uint64  `json:"out_bytes"`
}

// Fault is an injected fault and what followed it.
type Fault struct {
	AtS            float64  `json:"at_s"`
	Action         string   `json:"action"`
	Target         string   `json:"target"`
	ForS           float64  `json:"for_s,omitempty"`
	Detail         string   `json:"detail,omitempty"`
	DetectedAfterS *float64 `json:"detected_after_s,omitempty"`
	// ReaddedAfterS is how long after the fault's restore the health
	// check put its target back.
	ReaddedAfterS *float64 `json:"readded_after_s,omitempty"`
	// RecoveredAfterS is how long after the fault's restore (its start
	// when nothing restores it) the load's errors stopped, at the time
	// series' resolution; absent when they never did.
	RecoveredAfterS *float64 `json:"recovered_after_s,omitempty"`
}

// Health is one real server of one service under a health check: how
// often the check took it out and how often it came back (a flap is a
// whole up→down→up cycle). A service's sorry server has Sorry set, Ins
// counts the times it was put in, and Up says it is in at the end.
type Health struct {
	Node    string `json:"node"`
	Service string `json:"service"`
	Downs   int    `json:"downs"`
	Flaps   int    `json:"flaps"`
	Up      bool   `json:"up"` // at the end of the run
	Sorry   bool   `json:"sorry,omitempty"`
	Ins     int    `json:"ins,omitempty"`
}

// Expectation is one `expect:` line and its verdict.
type Expectation struct {
	Text   string  `json:"text"`
	Passed bool    `json:"passed"`
	Value  float64 `json:"value"`
	Detail string  `json:"detail,omitempty"`
}

// Timeseries is the per-interval view of the run (all phases together).
type Timeseries struct {
	IntervalS        float64              `json:"interval_s"`
	RPS              []float64            `json:"rps"`
	Errors           []uint64             `json:"errors"`
	P50MS            []float64            `json:"p50_ms"`
	P90MS            []float64            `json:"p90_ms"`
	P99MS            []float64            `json:"p99_ms"`
	MaxMS            []float64            `json:"max_ms"`
	BPS              []float64            `json:"bps"`
	PerRealserverCPS map[string][]float64 `json:"per_realserver_cps"`
}

// Phase describes a load phase for the report (what was asked for).
type Phase struct {
	Name        string
	From        string
	Target      string
	Kind        string
	Rate        float64 // > 0: open loop
	Poisson     bool
	Concurrency int
	KeepAlive   bool
	Sources     int
	Duration    time.Duration
	// Weights are the real servers' weights by the names their responses
	// carry; servers not named get weight 0, and no weights at all means
	// equal weights.
	Weights map[string]float64
}

// New returns an empty report for a scenario.
func New(scenario string) *Report {
	return &Report{
		Scenario: scenario, Passed: true,
		Services: []Service{}, Faults: []Fault{}, Expectations: []Expectation{},
		Timeseries: Timeseries{IntervalS: 1, RPS: []float64{}, Errors: []uint64{}, P50MS: []float64{},
			P90MS: []float64{}, P99MS: []float64{}, MaxMS: []float64{}, BPS: []float64{}, PerRealserverCPS: map[string][]float64{}},
	}
}

// NewLoad summarises one phase's (possibly merged) result.
func NewLoad(p Phase, res *metrics.Result) Load {
	d := p.Duration.Seconds()
	if d <= 0 {
		d = res.Elapsed.Seconds()
	}
	l := Load{
		Name: p.Name, From: p.From, Target: p.Target, Kind: p.Kind, Mode: "closed",
		Concurrency: p.Concurrency, KeepAlive: p.KeepAlive, Sources: p.Sources, DurationS: round(d, 3),
		Scheduled: res.Scheduled, Sent: res.Sent, Requests: res.Requests(), Errors: res.Errors(),
		ErrorsByClass: map[string]uint64{}, BytesSent: res.BytesSent, BytesReceived: res.BytesReceived,
		LatencyMS: latency(res), LatencyCDF: cdf(res),
	}
	if p.Rate > 0 {
		l.Mode, l.Rate, l.Arrival = "open", p.Rate, "constant"
		if p.Poisson {
			l.Arrival = "poisson"
		}
	}
	if l.Requests > 0 {
		l.ErrorRate = round(float64(l.Errors)/float64(l.Requests), 6)
	}
	for c := metrics.Refused; c < metrics.NumClasses; c++ {
		if n := res.Outcomes[c]; n > 0 {
			l.ErrorsByClass[c.String()] = n
		}
	}
	if d > 0 {
		l.ThroughputRPS = round(float64(res.Outcomes[metrics.OK])/d, 1)
		l.ThroughputBPS = round(8*float64(res.BytesReceived)/d, 0)
	}
	l.Realservers, l.Fairness = serverLoads(res, p.Weights)
	l.Clients = clientLoads(res)
	return l
}

// clientLoads sums up res.Clients by client address; responses that
// named no real server are left out.
func clientLoads(res *metrics.Result) *Clients {
	if len(res.Clients) == 0 {
		return nil
	}
	byAddr := map[netip.Addr]*ClientLoad{}
	for ap, servers := range res.Clients {
		for id, n := range servers {
			if id == "" || n == 0 {
				continue
			}
			cl := byAddr[ap.Addr()]
			if cl == nil {
				cl = &ClientLoad{Address: ap.Addr().String(), Realservers: map[string]uint64{}, ByPort: map[uint16]map[string]uint64{}}
				byAddr[ap.Addr()] = cl
			}
			if cl.ByPort[ap.Port()] == nil {
				cl.ByPort[ap.Port()] = map[string]uint64{}
			}
			cl.Realservers[id] += n
			cl.ByPort[ap.Port()][id] += n
		}
	}
	c := &Clients{PerClient: []ClientLoad{}}
	for _, a := range slices.SortedFunc(maps.Keys(byAddr), netip.Addr.Compare) {
		cl := byAddr[a]
		c.Addresses++
		if len(cl.Realservers) > 1 {
			c.PersistenceViolations++
		}
		c.MaxServersPerClient = max(c.MaxServersPerClient, len(cl.Realservers))
		c.PerClient = append(c.PerClient, *cl)
	}
	return c
}

func serverLoads(res *metrics.Result, weights map[string]float64) ([]ServerLoad, *Fairness) {
	ids := make([]string, 0, len(res.Servers)+len(weights))
	for id := range res.Servers {
		ids = append(ids, id)
	}
	for id := range weights {
		if res.Servers[id] == nil {
			ids = append(ids, id)
		}
	}
	slices.SortFunc(ids, naturalCompare)
	out := make([]ServerLoad, len(ids))
	conns, reqs, bytes, w := make([]float64, len(ids)), make([]float64, len(ids)), make([]float64, len(ids)), make([]float64, len(ids))
	for i, id := range ids {
		out[i].ID = id
		if sc := res.Servers[id]; sc != nil {
			out[i].Connections, out[i].Requests, out[i].Bytes = sc.Connections, sc.Requests, sc.Bytes
		}
		conns[i], reqs[i], bytes[i] = float64(out[i].Connections), float64(out[i].Requests), float64(out[i].Bytes)
		w[i] = 1
		if weights != nil {
			w[i] = weights[id]
		}
	}
	shares, wshares := Shares(conns), Shares(w)
	for i := range out {
		out[i].Share, out[i].Weight, out[i].WeightShare = round(shares[i], 4), w[i], round(wshares[i], 4)
	}
	if len(ids) == 0 {
		return out, nil
	}
	f := roundFairness(ComputeFairness(conns, reqs, bytes, w))
	return out, &f
}

// NewService computes shares and fairness for a service from the
// director's counters.
func NewService(vip, protocol, scheduler string, rs []RealServer) Service {
	conns, w := make([]float64, len(rs)), make([]float64, len(rs))
	for i, r := range rs {
		conns[i], w[i] = float64(r.Connections), float64(r.Weight)
	}
	shares, wshares := Shares(conns), Shares(w)
	out := slices.Clone(rs)
	for i := range out {
		out[i].Share, out[i].WeightShare = round(shares[i], 4), round(wshares[i], 4)
	}
	// The director counts connections only; requests and bytes of its
	// packets stand in for the other two indices.
	in, ob := make([]float64, len(rs)), make([]float64, len(rs))
	for i, r := range rs {
		in[i], ob[i] = float64(r.InPackets), float64(r.OutBytes+r.InBytes)
	}
	return Service{VIP: vip, Protocol: protocol, Scheduler: scheduler, Realservers: out,
		Fairness: roundFairness(ComputeFairness(conns, in, ob, w))}
}

// AddLoad adds a phase's result: the first phase becomes the report's
// load; later ones are merged into it and every phase is kept in Phases.
// The time series is rebuilt over all phases.
func (r *Report) AddLoad(p Phase, res *metrics.Result) error {
	r.loads = append(r.loads, phaseResult{p, res})
	total := metrics.NewResult(res.Start, res.Interval)
	var sum Phase
	for i, lr := range r.loads {
		if i == 0 {
			total.Start = lr.res.Start
			sum = lr.p
		}
		if err := total.Merge(lr.res); err != nil {
			return err
		}
	}
	if len(r.loads) > 1 {
		sum = r.allPhases()
		sum.Duration = total.Elapsed
		r.Phases = r.Phases[:0]
		for _, lr := range r.loads {
			r.Phases = append(r.Phases, NewLoad(lr.p, lr.res))
		}
	}
	l := NewLoad(sum, total)
	r.Load = &l
	r.Timeseries = series(total)
	if d := total.Elapsed.Seconds(); d > r.DurationS {
		r.DurationS = round(d, 3)
	}
	return nil
}

// allPhases describes the phases merged: the first phase's load settings,
// every phase's clients and targets, and every phase's real servers at the
// weight the last phase naming them saw (phases may target different
// services, each with its own real servers).
func (r *Report) allPhases() Phase {
	sum := r.loads[0].p
	sum.Name = "all phases"
	var froms, targets []string
	var weights map[string]float64
	for _, lr := range r.loads {
		froms = appendNew(froms, strings.Split(lr.p.From, ",")...)
		targets = appendNew(targets, lr.p.Target)
		for id, w := range lr.p.Weights {
			if weights == nil {
				weights = map[string]float64{}
			}
			weights[id] = w
		}
	}
	sum.Weights = weights
	sum.From, sum.Target = strings.Join(froms, ","), strings.Join(targets, ",")
	return sum
}

// appendNew appends the non-empty values list does not hold yet.
func appendNew(list []string, values ...string) []string {
	for _, v := range values {
		if v != "" && !slices.Contains(list, v) {
			list = append(list, v)
		}
	}
	return list
}

// Finish sets Passed from the expectations (true when there are none).
func (r *Report) Finish() {
	r.Passed = true
	for _, e := range r.Expectations {
		r.Passed = r.Passed && e.Passed
	}
}

type phaseResult struct {
	p   Phase
	res *metrics.Result
}

func latency(res *metrics.Result) Latency {
	h := res.Latency
	return Latency{
		P50: ms(h.ValueAtQuantile(50)), P90: ms(h.ValueAtQuantile(90)), P99: ms(h.ValueAtQuantile(99)),
		P999: ms(h.ValueAtQuantile(99.9)), Max: ms(h.Max()), Mean: round(h.Mean()/1000, 3),
	}
}

// cdf samples the latency distribution at percentiles that halve the
// distance to 100 every four steps, as HdrHistogram's own output does.
func cdf(res *metrics.Result) []CDFPoint {
	h := res.Latency
	if h.TotalCount() == 0 {
		return nil
	}
	var out []CDFPoint
	for k := 0; ; k++ {
		p := 100 * (1 - math.Pow(0.5, float64(k)/4))
		if p > 99.9999 || (k > 0 && float64(h.TotalCount())*(100-p)/100 < 1) {
			break
		}
		out = append(out, CDFPoint{Percentile: round(p, 4), MS: ms(h.ValueAtQuantile(p))})
	}
	return append(out, CDFPoint{Percentile: 100, MS: ms(h.Max())})
}

func series(res *metrics.Result) Timeseries {
	step := res.Interval.Seconds()
	ts := New("").Timeseries
	ts.IntervalS = step
	for i := range res.Series {
		iv := &res.Series[i]
		ts.RPS = append(ts.RPS, round(float64(iv.Outcomes[metrics.OK])/step, 1))
		ts.Errors = append(ts.Errors, iv.Errors())
		ts.P50MS = append(ts.P50MS, ms(iv.Latency.ValueAtQuantile(50)))
		ts.P90MS = append(ts.P90MS, ms(iv.Latency.ValueAtQuantile(90)))
		ts.P99MS = append(ts.P99MS, ms(iv.Latency.ValueAtQuantile(99)))
		ts.MaxMS = append(ts.MaxMS, ms(iv.Latency.Max()))
		ts.BPS = append(ts.BPS, round(8*float64(iv.BytesReceived)/step, 0))
		for id := range iv.Connections {
			if ts.PerRealserverCPS[id] == nil {
				ts.PerRealserverCPS[id] = make([]float64, len(res.Series))
			}
		}
	}
	for id, v := range ts.PerRealserverCPS {
		for i := range res.Series {
			v[i] = round(float64(res.Series[i].Connections[id])/step, 1)
		}
	}
	return ts
}

func ms(us int64) float64 { return round(float64(us)/1000, 3) }

func round(v float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(v*p) / p
}

func roundFairness(f Fairness) Fairness {
	f.Jain, f.WeightedJain, f.MaxShareError = round(f.Jain, 4), round(f.WeightedJain, 4), round(f.MaxShareError, 4)
	f.JainRequests, f.JainBytes, f.CV = round(f.JainRequests, 4), round(f.JainBytes, 4), round(f.CV, 4)
	f.ChiSquare, f.ChiP = round(f.ChiSquare, 3), round(f.ChiP, 4)
	return f
}

// naturalCompare orders "rs2" before "rs10".
func naturalCompare(a, b string) int {
	for a != "" && b != "" {
		da, db := digits(a), digits(b)
		if da > 0 && db > 0 {
			na, _ := strconv.ParseUint(a[:da], 10, 64)
			nb, _ := strconv.ParseUint(b[:db], 10, 64)
			if c := cmp.Compare(na, nb); c != 0 {
				return c
			}
			a, b = a[da:], b[db:]
			continue
		}
		if c := cmp.Compare(a[0], b[0]); c != 0 {
			return c
		}
		a, b = a[1:], b[1:]
	}
	return cmp.Compare(len(a), len(b))
}

func digits(s string) int {
	n := 0
	for n < len(s) && n < 18 && s[n] >= '0' && s[n] <= '9' {
		n++
	}
	return n
}

// WeightShareOf is the weight share of the real server named id (0 if unknown).
func (l *Load) WeightShareOf(id string) float64 {
	for _, s := range l.Realservers {
		if s.ID == id {
			return s.WeightShare
		}
	}
	return 0
}

// ShareOf is the observed connection share of the real server named id (0 if unknown).
func (l *Load) ShareOf(id string) float64 {
	for _, s := range l.Realservers {
		if s.ID == id {
			return s.Share
		}
	}
	return 0
}
