package scenarios

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/lvslab/lvslab/dataplane/engine"
	"github.com/lvslab/lvslab/loadgen"
	"github.com/lvslab/lvslab/loadgen/wire"
	"github.com/lvslab/lvslab/reports"
	"github.com/lvslab/lvslab/reports/metrics"
	"github.com/lvslab/lvslab/topo"
)

// RunOptions tune a run.
type RunOptions struct {
	// Scale multiplies every duration of the timeline (phases, fault
	// times): CI runs the examples at a fraction of their length.
	Scale float64
	Seed  uint64
	// RunDir and Executable are topo.Options'.
	RunDir     string
	Executable string
	// Progress receives one plain line per step; nil discards them.
	Progress io.Writer
	// TimelineStarted, when set, is called as the timeline starts, with its
	// length (a live display's total).
	TimelineStarted func(length time.Duration)
	// Manifest entries added to the report's (lvslab version, command line).
	Manifest map[string]string
	// Source is the scenario file's bytes, hashed into the manifest.
	Source []byte
}

// agentGrace is how long an agent may take to end after SIGTERM.
const agentGrace = 3 * time.Second

// DurationScaleEnv, when set to a number, is the default RunOptions.Scale.
const DurationScaleEnv = "LVSLAB_DURATION_SCALE"

// ScaleFromEnv returns $LVSLAB_DURATION_SCALE, or 1.
func ScaleFromEnv() (float64, error) {
	v := os.Getenv(DurationScaleEnv)
	if v == "" {
		return 1, nil
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || f <= 0 {
		return 0, fmt.Errorf("%s=%q: want a positive number", DurationScaleEnv, v)
	}
	return f, nil
}

// run is one scenario being run: the built lab and what was started in it.
type run struct {
	s     *Scenario
	opt   RunOptions
	in    *topo.Instance
	dests map[string][]Destination // by real server node
	// director is the control socket of the (first) director.
	director     string
	directorNode string
	health       *topo.Agent            // the health checker, if any service has checks
	directors    map[string]*topo.Agent // director agents by node
	servers      map[string]*topo.Agent // built-in real servers by node
	loaders      map[string]*topo.Agent // load generators by client node
	serverArgs   map[string][]string    // agent arguments by node, to start a killed one again
	procs        []*exec.Cmd
	mu           sync.Mutex
	t0           time.Time
}

// Run builds the scenario's lab, runs its timeline, and returns the report;
// the lab is destroyed before Run returns, whatever happens (ctx canceled
// included).
func (s *Scenario) Run(ctx context.Context, opt RunOptions) (rep *reports.Report, err error) {
	l, err := s.Start(ctx, opt)
	if err != nil {
		return nil, err
	}
	defer func() {
		if cerr := l.Close(); cerr != nil {
			err = errors.Join(err, cerr)
		}
	}()
	return l.RunTimeline(ctx)
}

// RunTimeline runs the scenario's load phases and faults on the lab, reads
// the director's counters and returns the report with every expectation
// evaluated. A lab runs its timeline once.
func (l *Lab) RunTimeline(ctx context.Context) (*reports.Report, error) {
	r, s := l.r, l.r.s
	rep := reports.New(s.Name)
	rep.Description = strings.TrimSpace(s.Description)
	rep.Environment = environment(l.features)
	rep.Manifest = r.manifest(l.features)
	phases, faults, err := r.timeline(ctx)
	if err != nil {
		return nil, err
	}
	for i, ph := range phases {
		if err := rep.AddLoad(ph.phase, ph.res); err != nil {
			return nil, fmt.Errorf("load phase %d: %w", i+1, err)
		}
	}
	if rep.Load != nil {
		rep.DurationS = rep.Load.DurationS
	}
	events, err := r.healthEvents(ctx)
	if err != nil {
		return nil, err
	}
	rep.Faults = faults
	for i := range rep.Faults {
		f := &rep.Faults[i]
		f.Detail = strings.Join(append([]string{errorsDuring(rep, *f)}, r.detection(f, events)...), "; ")
		r.recovery(rep, i)
	}
	rep.Health = healthSummary(events, r.s.healthSpecs(r.dests))
	// ipvsadm shows the counters the 2 s estimator last folded (spec §9.1),
	// and the director's clock ticks every second: wait for a fold that
	// covers the end of the load, as kipvs's waitstats does.
	if r.director != "" {
		select {
		case <-ctx.Done():
			return rep, ctx.Err()
		case <-time.After(estimatorSettle):
		}
	}
	if rep.Services, err = r.services(); err != nil {
		return rep, err
	}
	for _, text := range s.Expect {
		e, _ := ParseExpectation(text) // checked by Parse
		rep.Expectations = append(rep.Expectations, e.Evaluate(rep))
	}
	rep.Finish()
	return rep, ctx.Err()
}

func (r *run) progress(format string, args ...any) {
	if r.opt.Progress == nil {
		return
	}
	at := ""
	if !r.t0.IsZero() {
		at = fmt.Sprintf("[%6.1fs] ", time.Since(r.t0).Seconds())
	}
	fmt.Fprintf(r.opt.Progress, at+format+"\n", args...)
}

// start starts the directors with their tables and the real servers.
func (r *run) start() error {
	for _, n := range r.in.Lab.Nodes {
		if n.Role != topo.Director {
			continue
		}
		a, args, dests, err := r.s.StartDirector(r.in, n.Name)
		if err != nil {
			return err
		}
		r.progress("director %s: %d ipvsadm rules loaded", n.Name, len(args)/2)
		r.directors[n.Name], r.serverArgs[n.Name] = a, args
		if r.director == "" {
			r.director, r.directorNode = a.Socket, n.Name
			for _, d := range dests {
				r.dests[d.Node] = append(r.dests[d.Node], d)
			}
		}
	}
	for _, n := range r.s.Nodes {
		if n.Role == string(topo.Director) {
			continue // StartDirector loaded its nftables
		}
		if err := r.s.LoadNFTables(r.in, n.Name); err != nil {
			return err
		}
	}
	for _, n := range r.s.Nodes {
		if n.Role != string(topo.RealServer) {
			continue
		}
		sv := r.serverOf(n)
		if sv == nil {
			continue
		}
		if sv.Kind == "command" {
			cmd := exec.Command("/bin/sh", "-c", sv.Command)
			if err := r.in.Start(n.Name, cmd); err != nil {
				return fmt.Errorf("node %s: starting %q: %w", n.Name, sv.Command, err)
			}
			r.procs = append(r.procs, cmd)
			continue
		}
		kind := sv.Kind
		if kind == "" {
			kind = "http"
		}
		args := []string{"--listen", fmt.Sprintf("0.0.0.0:%d", sv.Port), "--kind", kind, "--id", n.Name,
			"--response-bytes", fmt.Sprint(sv.ResponseBytes), "--service-time", sv.ServiceTime,
			"--max-concurrency", fmt.Sprint(sv.MaxConcurrency), "--max-queue", fmt.Sprint(sv.MaxQueue)}
		a, err := r.in.StartAgent(n.Name, RealServerAgent, args...)
		if err != nil {
			return fmt.Errorf("starting the real server on %s: %w", n.Name, err)
		}
		r.servers[n.Name], r.serverArgs[n.Name] = a, args
	}
	r.progress("%d real servers serving", len(r.servers))
	return r.startHealth()
}

// startHealth starts the health checker in the (first) director's node.
func (r *run) startHealth() error {
	specs := r.s.healthSpecs(r.dests)
	if len(specs) == 0 {
		return nil
	}
	b, err := json.Marshal(specs)
	if err != nil {
		return err
	}
	a, err := r.in.StartAgent(r.directorNode, HealthAgent, "--director", r.director, "--checks", string(b))
	if err != nil {
		return fmt.Errorf("starting the health checks: %w", err)
	}
	r.health = a
	r.progress("health checks on %d real servers", len(specs))
	return nil
}

// healthEvents are the checker's transitions, none without checks.
func (r *run) healthEvents(ctx context.Context) ([]HealthEvent, error) {
	if r.health == nil {
		return nil, nil
	}
	rep, err := callAgent(ctx, r.health.Socket, struct{}{})
	if err != nil {
		return nil, fmt.Errorf("health checks: %w", err)
	}
	var evs []HealthEvent
	if len(rep.Events) > 0 {
		err = json.Unmarshal(rep.Events, &evs)
	}
	return evs, err
}

// serverOf is what a real server node runs: its server block, or a
// built-in server of its first service's protocol and port.
func (r *run) serverOf(n Node) *Server {
	var sv Server
	if n.Server != nil {
		sv = *n.Server
	}
	for _, s := range r.in.Lab.Services {
		for _, d := range s.Dests {
			if d.Node != n.Name {
				continue
			}
			if sv.Port == 0 {
				sv.Port = int(d.Port)
			}
			if sv.Kind == "" && s.Protocol == "udp" {
				sv.Kind = "udp"
			}
		}
	}
	if sv.Port == 0 && sv.Kind != "command" {
		return nil // serves nothing
	}
	return &sv
}

type phaseResult struct {
	phase reports.Phase
	res   *metrics.Result
}

// timeline runs the load phases and the faults, each at its time from t0.
func (r *run) timeline(ctx context.Context) ([]phaseResult, []reports.Fault, error) {
	starts, end := r.s.PhaseStarts(r.opt.Scale)
	type job struct {
		node  string
		cfg   loadgen.Config
		phase int
	}
	var jobs []job
	loaders := r.loaders
	for i := range r.s.Load {
		cfgs, err := r.loadConfigs(i)
		if err != nil {
			return nil, nil, err
		}
		for node, cfg := range cfgs {
			if loaders[node] == nil {
				a, err := r.in.StartAgent(node, LoadAgent)
				if err != nil {
					return nil, nil, fmt.Errorf("starting the load generator on %s: %w", node, err)
				}
				loaders[node] = a
			}
			jobs = append(jobs, job{node, cfg, i})
		}
	}
	parent := ctx
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	r.t0 = time.Now()
	if r.opt.TimelineStarted != nil {
		r.opt.TimelineStarted(end)
	}
	r.progress("timeline starts: %d load phases, %d faults, %s", len(r.s.Load), len(r.s.Faults), end.Round(time.Millisecond))
	results := make([]*metrics.Result, len(r.s.Load))
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	for _, j := range jobs {
		wg.Go(func() {
			if !sleepUntil(ctx, r.t0.Add(starts[j.phase])) {
				return
			}
			p := &r.s.Load[j.phase]
			r.progress("load phase %q from %s: %s to %s for %s", p.Name, j.node, rateText(j.cfg), j.cfg.Target, j.cfg.Duration)
			rep, err := callAgent(ctx, loaders[j.node].Socket, newLoadRequest(j.cfg))
			mu.Lock()
			defer mu.Unlock()
			if ctx.Err() != nil {
				return // canceled: the error is the cancellation's
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("load phase %q on %s: %w", p.Name, j.node, err))
				cancel()
				return
			}
			if results[j.phase] == nil {
				results[j.phase] = rep.Result
			} else if err := results[j.phase].Merge(rep.Result); err != nil {
				errs = append(errs, err)
			}
			r.progress("load phase %q from %s done: %d requests, %d errors", p.Name, j.node, rep.Result.Requests(), rep.Result.Errors())
		})
	}
	faults := make([]reports.Fault, len(r.s.Faults))
	for i := range r.s.Faults {
		wg.Go(func() {
			if err := r.fault(ctx, i, &faults[i]); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
				cancel()
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, nil, err
	}
	if err := parent.Err(); err != nil {
		return nil, nil, err
	}
	var out []phaseResult
	for i, res := range results {
		if res == nil {
			continue
		}
		out = append(out, phaseResult{r.reportPhase(i), res})
	}
	return out, faults, nil
}

func rateText(c loadgen.Config) string {
	if c.Rate > 0 {
		return fmt.Sprintf("%g/s", c.Rate)
	}
	return fmt.Sprintf("%d clients", c.Concurrency)
}

func sleepUntil(ctx context.Context, t time.Time) bool {
	tm := time.NewTimer(time.Until(t))
	defer tm.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-tm.C:
		return true
	}
}

// loadConfigs is phase i's load generator configuration per client node.
func (r *run) loadConfigs(i int) (map[string]loadgen.Config, error) {
	p := &r.s.Load[i]
	froms := p.Froms()
	if len(froms) == 0 {
		for _, n := range r.s.Nodes {
			if n.Role == string(topo.Client) {
				froms = []string{n.Name}
				break
			}
		}
	}
	if len(froms) == 0 {
		return nil, fmt.Errorf("load phase %q: the lab has no client node", p.Name)
	}
	target, kind, err := r.target(p)
	if err != nil {
		return nil, err
	}
	cfg := loadgen.Config{Target: target, Kind: kind, Concurrency: p.Concurrency, Duration: p.DurationOf(r.opt.Scale),
		KeepAlive: p.NewConnectionPerRequest != nil && !*p.NewConnectionPerRequest, RequestBytes: p.RequestBytes,
		Path: p.Path, Seed: r.opt.Seed + uint64(i), Workers: min(2, runtime.GOMAXPROCS(0))}
	if p.Rate != "" {
		rate, _ := loadgen.ParseRate(p.Rate)
		cfg.Rate = rate / float64(len(froms))
	}
	if p.Arrival == "poisson" {
		cfg.Arrival = loadgen.Poisson
	}
	if p.Timeout != "" {
		cfg.Timeout, _ = duration(p.Timeout, 0)
	}
	out := map[string]loadgen.Config{}
	for _, from := range froms {
		c := cfg
		for _, n := range r.s.Nodes {
			if n.Name == from && n.SourceAddresses != "" {
				c.Sources, _ = parseAddressList(n.SourceAddresses)
			}
		}
		if err := c.Check(); err != nil {
			return nil, fmt.Errorf("load phase %q: %w", p.Name, err)
		}
		out[from] = c
	}
	return out, nil
}

// target is the phase's target, the first service by default, with the
// kind of load its protocol takes.
func (r *run) target(p *Phase) (netip.AddrPort, wire.Kind, error) {
	var ap netip.AddrPort
	proto := "tcp"
	if p.Target != "" {
		ap, _ = netip.ParseAddrPort(p.Target)
		for i, s := range r.in.Lab.Services {
			if r.s.aims(r.in.Lab, i, ap) && s.Protocol == "udp" {
				proto = "udp"
			}
		}
	} else {
		ap, proto = r.s.defaultTarget(r.in.Lab), r.in.Lab.Services[0].Protocol
	}
	kind := p.Kind
	if kind == "" {
		kind = defaultKind(proto)
	}
	k, err := wire.ParseKind(kind)
	return ap, k, err
}

// reportPhase describes phase i for the report, with the weights of the
// target service's real servers by node name (their responses' names).
func (r *run) reportPhase(i int) reports.Phase {
	p := &r.s.Load[i]
	cfgs, _ := r.loadConfigs(i)
	var cfg loadgen.Config
	for _, c := range cfgs {
		cfg = c
	}
	weights := r.weightsAt(cfg.Target, r.phaseStart(i))
	name := p.Name
	if name == "" {
		name = fmt.Sprintf("phase %d", i+1)
	}
	return reports.Phase{Name: name, From: strings.Join(p.Froms(), ","), Target: cfg.Target.String(), Kind: cfg.Kind.String(),
		Rate: cfg.Rate * float64(len(cfgs)), Poisson: cfg.Arrival == loadgen.Poisson, Concurrency: cfg.Concurrency,
		KeepAlive: cfg.KeepAlive, Sources: len(cfg.Sources), Duration: cfg.Duration, Weights: weights}
}

func (r *run) phaseStart(i int) time.Duration {
	starts, _ := r.s.PhaseStarts(r.opt.Scale)
	return starts[i]
}

// weightsAt is the weight of each real server of the service at target by
// node name, as the table stands at time at: the scenario's weights, with
// the table faults (weight, add, remove) that came before applied.
func (r *run) weightsAt(target netip.AddrPort, at time.Duration) map[string]float64 {
	in := map[string]bool{}
	weight := map[string]int{}
	for i, s := range r.in.Lab.Services {
		if !r.s.aims(r.in.Lab, i, target) {
			continue
		}
		for j, d := range s.Dests {
			// The ipvsadm block's real servers follow the structured ones.
			standby := i < len(r.s.Services) && j < len(r.s.Services[i].RealServers) && r.s.Services[i].RealServers[j].Standby
			in[d.Node], weight[d.Node] = !standby, d.Weight
		}
	}
	type change struct {
		at time.Duration
		f  *Fault
	}
	var changes []change
	for i := range r.s.Faults {
		f := &r.s.Faults[i]
		if t, _ := r.s.FaultTimes(f, r.opt.Scale); t <= at {
			changes = append(changes, change{t, f})
		}
	}
	slices.SortStableFunc(changes, func(a, b change) int { return cmp.Compare(a.at, b.at) })
	for _, c := range changes {
		act, node, _ := c.f.Action()
		if _, ok := in[node]; !ok {
			continue
		}
		switch act {
		case Add:
			in[node] = true
		case Remove:
			in[node] = false
		case Weight:
			weight[node] = c.f.Weight.Value
		}
	}
	out := map[string]float64{}
	for node, ok := range in {
		if ok {
			out[node] = float64(weight[node])
		}
	}
	return out
}

// estimatorSettle is one estimator period plus one tick of the director's
// clock.
const estimatorSettle = 3 * time.Second

// services reads the director's counters (ipvsadm -L -n --stats --exact)
// into the report's services.
func (r *run) services() ([]reports.Service, error) {
	if r.director == "" {
		return nil, nil
	}
	var out, errb bytes.Buffer
	code, err := engine.Ipvsadm(r.director, []string{"-L", "-n", "--stats", "--exact"}, nil, &out, &errb)
	if err == nil && code != 0 {
		err = fmt.Errorf("ipvsadm -L -n --stats: %s", strings.TrimSpace(errb.String()))
	}
	if err != nil {
		return nil, fmt.Errorf("reading the director's counters: %w", err)
	}
	stats := parseStats(out.String())
	byAddr := map[string]Destination{}
	for _, ds := range r.dests {
		for _, d := range ds {
			server := d.Server
			if a, err := netip.ParseAddr(server); err == nil {
				server = netip.AddrPortFrom(a, 0).String() // a port-0 or fwmark service's, as listed
			}
			byAddr[d.Service+" "+server] = d
		}
	}
	var svcs []reports.Service
	for i, s := range r.s.Services {
		ls := r.in.Lab.Services[i]
		key := serviceKeyArgs(ls)
		st := stats[key]
		if st == nil {
			st = &svcStats{}
		}
		var rss []reports.RealServer
		for _, d := range st.dests {
			rs := reports.RealServer{Node: byAddr[key+" "+d.addr].Node, Address: d.addr, Connections: d.c[0],
				InPackets: d.c[1], OutPackets: d.c[2], InBytes: d.c[3], OutBytes: d.c[4]}
			if dd, ok := byAddr[key+" "+d.addr]; ok {
				rs.Forward = map[string]string{"-m": "nat", "-g": "dr", "-i": "tun"}[dd.Method]
				rs.Weight = dd.Weight
			}
			rss = append(rss, rs)
		}
		proto := ls.Protocol
		if ls.FWMark != 0 {
			proto = "fwmark"
		}
		svcs = append(svcs, reports.NewService(s.VIP.String(), proto, s.SchedulerOf(), rss))
	}
	return svcs, nil
}

func serviceKeyArgs(s topo.Service) string {
	switch {
	case s.FWMark != 0:
		return fmt.Sprintf("-f %d", s.FWMark)
	case s.Protocol == "udp":
		return "-u " + netip.AddrPortFrom(s.VIP, s.Port).String()
	case s.Protocol == "sctp":
		return "--sctp-service " + netip.AddrPortFrom(s.VIP, s.Port).String()
	}
	return "-t " + netip.AddrPortFrom(s.VIP, s.Port).String()
}

type svcStats struct {
	dests []destStats
}

type destStats struct {
	addr string
	c    [5]uint64 // conns, inpkts, outpkts, inbytes, outbytes
}

// parseStats reads `ipvsadm -L -n --stats --exact` keyed like
// serviceKeyArgs ("-t 192.168.1.110:80").
func parseStats(s string) map[string]*svcStats {
	out := map[string]*svcStats{}
	var cur *svcStats
	flag := map[string]string{"TCP": "-t", "UDP": "-u", "SCTP": "--sctp-service", "FWM": "-f"}
	for line := range strings.SplitSeq(s, "\n") {
		f := strings.Fields(line)
		if len(f) != 7 {
			continue
		}
		var c [5]uint64
		ok := true
		for i := range c {
			v, err := strconv.ParseUint(f[2+i], 10, 64)
			c[i], ok = v, ok && err == nil
		}
		if !ok {
			continue
		}
		if p, isSvc := flag[f[0]]; isSvc {
			cur = &svcStats{}
			out[p+" "+f[1]] = cur
		} else if f[0] == "->" && cur != nil {
			cur.dests = append(cur.dests, destStats{f[1], c})
		}
	}
	return out
}

// environment is what the report says about the machine.
func environment(f topo.Features) map[string]string {
	yes := map[bool]string{true: "present", false: "absent"}
	return map[string]string{"packet_io": "afpacket", "ipip": f.Decap(), "netem": yes[f.Netem], "tbf": yes[f.TBF],
		"kernel_ipvs": yes[f.IPVS], "kernel": f.Kernel, "go": runtime.Version()}
}

func (r *run) manifest(f topo.Features) map[string]string {
	m := map[string]string{"seed": fmt.Sprint(r.opt.Seed), "duration_scale": fmt.Sprint(r.opt.Scale),
		"kernel_features": f.String(), "fallbacks": fallbacks(f), "lab": r.in.ID}
	if len(r.opt.Source) > 0 {
		h := sha256.Sum256(r.opt.Source)
		m["scenario_sha256"] = hex.EncodeToString(h[:])
	}
	for k, v := range r.opt.Manifest {
		m[k] = v
	}
	return m
}

func fallbacks(f topo.Features) string {
	var fb []string
	if !f.IPVS {
		fb = append(fb, "userspace IPVS director (no kernel IPVS)")
	}
	if !f.IPIP {
		fb = append(fb, "userspace IPIP decapsulation (no ipip driver)")
	}
	if len(fb) == 0 {
		return "none"
	}
	return strings.Join(fb, "; ")
}
