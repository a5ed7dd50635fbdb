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
	"maps"
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
	"github.com/lvslab/lvslab/topo/impair"
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

	// delays are the link delays on now, delayStats what the ended ones
	// counted, by fault.
	delays     map[*Fault]*impair.Impairment
	delayStats map[*Fault]impair.Stats
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
	results, faults, err := r.timeline(ctx)
	if err != nil {
		return nil, err
	}
	events, err := r.healthEvents(ctx)
	if err != nil {
		return nil, err
	}
	for i, res := range results {
		if res == nil {
			continue // the phase never ran
		}
		if err := rep.AddLoad(r.reportPhase(i, events), res); err != nil {
			return nil, fmt.Errorf("load phase %d: %w", i+1, err)
		}
	}
	if rep.Load != nil {
		rep.DurationS = rep.Load.DurationS
	}
	rep.Faults = faults
	for i := range rep.Faults {
		f := &rep.Faults[i]
		f.Detail = strings.Join(slices.Concat([]string{errorsDuring(rep, *f)}, r.linkEffect(rep, i), r.detection(f, events)), "; ")
		r.recovery(rep, i)
	}
	rep.Health = healthSummary(events, r.s.healthSpecs(r.dests))
	// ipvsadm shows the counters the 2 s estimator last folded (spec §9.1):
	// wait for the fold that covers the end of the load, as kipvs's
	// waitstats does (at most one estimator period).
	if r.director != "" {
		folded := make(chan error, 1)
		go func() { folded <- engine.AwaitFold(r.director) }()
		select {
		case <-ctx.Done():
			return rep, ctx.Err()
		case err := <-folded:
			if err != nil {
				return rep, fmt.Errorf("waiting for the director's estimator: %w", err)
			}
		}
	}
	if rep.Services, err = r.services(); err != nil {
		return rep, err
	}
	if rep.Director, err = r.directorStats(); err != nil {
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
		if n.Role == string(topo.Director) || n.Role == string(topo.RealServer) {
			continue // StartDirector and StartRealServer load theirs
		}
		if err := r.s.LoadNFTables(r.in, n.Name); err != nil {
			return err
		}
	}
	for _, n := range r.s.Nodes {
		if n.Role != string(topo.RealServer) {
			continue
		}
		a, args, cmd, err := r.s.StartRealServer(r.in, n.Name)
		switch {
		case err != nil:
			return err
		case cmd != nil:
			r.procs = append(r.procs, cmd)
		case a != nil:
			r.servers[n.Name], r.serverArgs[n.Name] = a, args
		}
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

// timeline runs the load phases and the faults, each at its time from t0,
// and returns each phase's result (nil for a phase that never ran).
func (r *run) timeline(ctx context.Context) ([]*metrics.Result, []reports.Fault, error) {
	starts, end := r.s.PhaseStarts(r.opt.Scale)
	type job struct {
		loadJob
		phase int
	}
	var jobs []job
	loaders := r.loaders
	for i := range r.s.Load {
		ljs, err := r.loadJobs(i)
		if err != nil {
			return nil, nil, err
		}
		for _, lj := range ljs {
			if loaders[lj.node] == nil {
				a, err := r.in.StartAgent(lj.node, LoadAgent)
				if err != nil {
					return nil, nil, fmt.Errorf("starting the load generator on %s: %w", lj.node, err)
				}
				loaders[lj.node] = a
			}
			jobs = append(jobs, job{lj, i})
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
	steps := newFaultSteps(len(r.s.Faults))
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	for _, j := range jobs {
		wg.Go(func() {
			if !sleepUntil(ctx, r.t0.Add(starts[j.phase])) || !r.awaitFaults(ctx, steps, starts[j.phase]) {
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
			if err := r.fault(ctx, i, &faults[i], steps); err != nil {
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
	return results, faults, nil
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

// loadJob is one load generator run of a phase: one client node sending
// to one target.
type loadJob struct {
	node string
	cfg  loadgen.Config
}

// loadJobs are phase i's load generator runs: one per client node and
// target, the phase's rate split evenly over them (its concurrency is
// each one's).
func (r *run) loadJobs(i int) ([]loadJob, error) {
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
	targets, _ := p.Targets() // checked by Parse
	if len(targets) == 0 {
		targets = []netip.AddrPort{r.s.defaultTarget(r.in.Lab)}
	}
	cfg := loadgen.Config{Concurrency: p.Concurrency, Duration: p.DurationOf(r.opt.Scale),
		KeepAlive: p.NewConnectionPerRequest != nil && !*p.NewConnectionPerRequest, RequestBytes: p.RequestBytes,
		Path: p.Path, Seed: r.opt.Seed + uint64(i), Workers: min(2, runtime.GOMAXPROCS(0))}
	if p.Rate != "" {
		rate, _ := loadgen.ParseRate(p.Rate)
		cfg.Rate = rate / float64(len(froms)*len(targets))
	}
	if p.Arrival == "poisson" {
		cfg.Arrival = loadgen.Poisson
	}
	if p.Timeout != "" {
		cfg.Timeout, _ = duration(p.Timeout, 0)
	}
	var out []loadJob
	for _, from := range froms {
		for j, target := range targets {
			c := cfg
			c.Target = target
			c.Seed += uint64(j) << 32
			var err error
			if c.Kind, err = r.kindFor(p, target); err != nil {
				return nil, err
			}
			for _, n := range r.s.Nodes {
				if n.Name == from && n.SourceAddresses != "" {
					c.Sources, _ = parseAddressList(n.SourceAddresses)
				}
			}
			if err := c.Check(); err != nil {
				return nil, fmt.Errorf("load phase %q: %w", p.Name, err)
			}
			out = append(out, loadJob{from, c})
		}
	}
	return out, nil
}

// kindFor is the kind of load the phase sends to target: its own, or the
// one the target service's protocol takes.
func (r *run) kindFor(p *Phase, target netip.AddrPort) (wire.Kind, error) {
	kind := p.Kind
	if kind == "" {
		proto := "tcp"
		for i, s := range r.in.Lab.Services {
			if r.s.aims(r.in.Lab, i, target) && s.Protocol == "udp" {
				proto = "udp"
			}
		}
		kind = defaultKind(proto)
	}
	return wire.ParseKind(kind)
}

// reportPhase describes phase i for the report, with the weights of the
// target services' real servers by node name (their responses' names) at
// the phase's start; events are the health checker's.
func (r *run) reportPhase(i int, events []HealthEvent) reports.Phase {
	p := &r.s.Load[i]
	jobs, _ := r.loadJobs(i)
	var targets []string
	weights := map[string]float64{}
	rate := 0.0
	for _, j := range jobs {
		rate += j.cfg.Rate
		t := j.cfg.Target.String()
		if slices.Contains(targets, t) {
			continue
		}
		targets = append(targets, t)
		maps.Copy(weights, r.weightsAt(j.cfg.Target, r.phaseStart(i), events))
	}
	cfg := jobs[0].cfg
	return reports.Phase{Name: p.NameOf(i), From: strings.Join(p.Froms(), ","), Target: strings.Join(targets, ","), Kind: cfg.Kind.String(),
		Rate: rate, Poisson: cfg.Arrival == loadgen.Poisson, Concurrency: cfg.Concurrency,
		KeepAlive: cfg.KeepAlive, Sources: len(cfg.Sources), Duration: cfg.Duration, Weights: weights}
}

func (r *run) phaseStart(i int) time.Duration {
	starts, _ := r.s.PhaseStarts(r.opt.Scale)
	return starts[i]
}

// weightsAt is the weight of each real server of the service at target by
// node name, as the table stands at time at: the scenario's weights, with
// what changed the table before applied in turn: the table faults (weight,
// add, remove) and the health checker's events (a server down is weight 0
// when quiescent, else out; the sorry server is in only while every real
// server is down).
func (r *run) weightsAt(target netip.AddrPort, at time.Duration, events []HealthEvent) map[string]float64 {
	in := map[string]bool{}
	weight, initial := map[string]int{}, map[string]int{}
	type change struct {
		at    time.Duration
		apply func()
	}
	var changes []change
	for i, s := range r.in.Lab.Services {
		if !r.s.aims(r.in.Lab, i, target) {
			continue
		}
		quiescent := true
		if i < len(r.s.Services) {
			if hc := r.s.Services[i].HealthCheck; hc != nil && hc.Quiescent != nil {
				quiescent = *hc.Quiescent
			}
		}
		for j, d := range s.Dests {
			// The ipvsadm block's real servers follow the structured ones.
			var rs RealServer
			if i < len(r.s.Services) && j < len(r.s.Services[i].RealServers) {
				rs = r.s.Services[i].RealServers[j]
			}
			in[d.Node], weight[d.Node], initial[d.Node] = !rs.Standby, d.Weight, d.Weight
		}
		key := serviceKeyArgs(s)
		for _, e := range events {
			t := e.At.Sub(r.t0)
			if e.Service != key || t > at {
				continue
			}
			n := e.Node
			changes = append(changes, change{t, func() {
				switch {
				case e.Sorry:
					in[n], weight[n] = e.Up, sorryWeight
				case quiescent && e.Up:
					weight[n] = initial[n]
				case quiescent:
					weight[n] = 0
				default:
					in[n] = e.Up
				}
			}})
		}
	}
	for i := range r.s.Faults {
		f := &r.s.Faults[i]
		act, node, _ := f.Action()
		if t, _ := r.s.FaultTimes(f, r.opt.Scale); t <= at {
			changes = append(changes, change{t, func() {
				if _, ok := in[node]; !ok {
					return
				}
				switch act {
				case Add:
					in[node] = true
				case Remove:
					in[node] = false
				case Weight:
					weight[node] = f.Weight.Value
				}
			}})
		}
	}
	slices.SortStableFunc(changes, func(a, b change) int { return cmp.Compare(a.at, b.at) })
	for _, c := range changes {
		c.apply()
	}
	out := map[string]float64{}
	for node, ok := range in {
		if ok {
			out[node] = float64(weight[node])
		}
	}
	return out
}

// services reads the director's counters (ipvsadm -L -n --stats --exact)
// into the report's services: the structured ones, then those only the
// ipvsadm block declares. Each destination is named by the real server
// node that owns its address, with the weight and forwarding method the
// scenario gave it.
func (r *run) services() ([]reports.Service, error) {
	if r.director == "" {
		return nil, nil
	}
	stats, err := r.listing("-L", "-n", "--stats", "--exact")
	if err != nil {
		return nil, fmt.Errorf("reading the director's counters: %w", err)
	}
	table, err := r.listing("-S", "-n")
	if err != nil {
		return nil, fmt.Errorf("reading the director's table: %w", err)
	}
	counters, scheds := parseStats(stats), parseSchedulers(table)
	var svcs []reports.Service
	for i, ls := range r.in.Lab.Services {
		key := serviceKeyArgs(ls)
		st := counters[key]
		if st == nil {
			st = &svcStats{}
		}
		var rss []reports.RealServer
		for _, d := range st.dests {
			rs := reports.RealServer{Address: d.addr.String(), Connections: d.c[0],
				InPackets: d.c[1], OutPackets: d.c[2], InBytes: d.c[3], OutBytes: d.c[4]}
			rs.Node = realServerAt(r.in.Lab, d.addr.Addr())
			for _, ld := range ls.Dests {
				if ld.Node == rs.Node && ld.Port == d.addr.Port() {
					rs.Forward, rs.Weight = string(ld.Forward), ld.Weight
				}
			}
			rss = append(rss, rs)
		}
		proto := ls.Protocol
		if ls.FWMark != 0 {
			proto = "fwmark"
		}
		vip, sched := netip.AddrPortFrom(ls.VIP, ls.Port).String(), scheds[key]
		switch {
		case i < len(r.s.Services):
			vip, sched = r.s.Services[i].VIP.String(), r.s.Services[i].SchedulerOf()
		case ls.FWMark != 0 && ls.VIP.IsValid():
			vip = ls.VIP.String()
		case ls.FWMark != 0:
			vip = ""
		}
		svc := reports.NewService(vip, proto, sched, rss)
		svc.FWMark = ls.FWMark
		svcs = append(svcs, svc)
	}
	return svcs, nil
}

// listing runs ipvsadm against the (first) director and returns what it
// printed; a non-zero exit status is an error carrying ipvsadm's message.
func (r *run) listing(args ...string) (string, error) {
	if r.director == "" {
		return "", errors.New("the lab has no director")
	}
	var out, errb bytes.Buffer
	code, err := engine.Ipvsadm(r.director, args, nil, &out, &errb)
	if err == nil && code != 0 {
		err = fmt.Errorf("ipvsadm %s: exit status %d: %s", strings.Join(args, " "), code, strings.TrimSpace(errb.String()))
	}
	return out.String(), err
}

// parseSchedulers reads each service's scheduler from `ipvsadm -S -n`,
// keyed like serviceKeyArgs.
func parseSchedulers(s string) map[string]string {
	out := map[string]string{}
	for line := range strings.SplitSeq(s, "\n") {
		rest, ok := strings.CutPrefix(line, "-A ")
		if !ok {
			continue
		}
		key, opts, _ := strings.Cut(rest, " -s ")
		sched, _, _ := strings.Cut(opts, " ")
		out[key] = sched
	}
	return out
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
	addr netip.AddrPort
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
		} else if ap, err := netip.ParseAddrPort(f[1]); err == nil && f[0] == "->" && cur != nil {
			cur.dests = append(cur.dests, destStats{ap, c})
		}
	}
	return out
}

// environment is what the report says about the machine.
func environment(f topo.Features) map[string]string {
	yes := map[bool]string{true: "present", false: "absent"}
	return map[string]string{"packet_io": "afpacket", "ipip": f.Decap(), "netem": yes[f.Netem], "delay": f.DelayMechanism(), "tbf": yes[f.TBF],
		"kernel_ipvs": yes[f.IPVS], "nfqueue": yes[f.NFQueue], "kernel": f.Kernel, "go": runtime.Version()}
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
	if !f.Netem {
		fb = append(fb, "userspace link delay line (no netem)")
	}
	if len(fb) == 0 {
		return "none"
	}
	return strings.Join(fb, "; ")
}
