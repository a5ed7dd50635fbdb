package scenarios

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/lvslab/lvslab/dataplane/engine"
	"github.com/lvslab/lvslab/reports"
	"github.com/lvslab/lvslab/topo"
	"github.com/lvslab/lvslab/topo/impair"
)

// faultSteps says when each fault's action and its restore are done (their
// channels are closed then, or when the fault ends early), so a load phase
// can wait for the faults timed before it.
type faultSteps struct {
	applied, restored []chan struct{}
}

func newFaultSteps(n int) *faultSteps {
	st := &faultSteps{applied: make([]chan struct{}, n), restored: make([]chan struct{}, n)}
	for i := range n {
		st.applied[i], st.restored[i] = make(chan struct{}), make(chan struct{})
	}
	return st
}

// awaitFaults returns once every fault action and restore timed at or
// before at is done (false when ctx ends first). A phase timed after a
// fault measures the lab with the fault in effect (or undone): the
// action takes time (nft, tc, a process's exit or start), which on a busy
// machine exceeds the gap a scenario leaves before the phase, and a timer
// can fire late; without the wait, the phase would race the fault.
func (r *run) awaitFaults(ctx context.Context, st *faultSteps, at time.Duration) bool {
	for i := range r.s.Faults {
		fat, length := r.s.FaultTimes(&r.s.Faults[i], r.opt.Scale)
		var waits []chan struct{}
		if fat <= at {
			waits = append(waits, st.applied[i])
		}
		if length > 0 && fat+length <= at {
			waits = append(waits, st.restored[i])
		}
		for _, c := range waits {
			if !awaitStep(ctx, c) {
				return false
			}
		}
	}
	return true
}

// awaitStep waits for step to be done; false when ctx ends before it is
// (a step already done counts whatever ctx says).
func awaitStep(ctx context.Context, step <-chan struct{}) bool {
	select {
	case <-step:
		return true
	default:
	}
	select {
	case <-ctx.Done():
		return false
	case <-step:
		return true
	}
}

// fault waits for fault i's time, applies it, and restores it after its
// for:, recording both in out and marking each step done in st.
func (r *run) fault(ctx context.Context, i int, out *reports.Fault, st *faultSteps) error {
	applied := sync.OnceFunc(func() { close(st.applied[i]) })
	defer close(st.restored[i])
	defer applied()
	f := &r.s.Faults[i]
	act, target, _ := f.Action()
	at, length := r.s.FaultTimes(f, r.opt.Scale)
	*out = reports.Fault{AtS: at.Seconds(), Action: string(act), Target: target, ForS: length.Seconds()}
	if !sleepUntil(ctx, r.t0.Add(at)) {
		return nil
	}
	r.progress("fault: %s %s", act, target)
	if err := r.apply(ctx, act, target, f); err != nil && ctx.Err() == nil {
		return fmt.Errorf("fault %s %s at %s: %w", act, target, at, err)
	}
	applied()
	if length == 0 {
		return nil
	}
	if !sleepUntil(ctx, r.t0.Add(at+length)) {
		return nil
	}
	r.progress("fault over: %s %s restored", act, target)
	if err := r.apply(ctx, Restore, target, f); err != nil && ctx.Err() == nil {
		return fmt.Errorf("restoring %s after %s: %w", target, act, err)
	}
	return nil
}

// apply does one action now. Server-side actions go to the real server's
// agent (kill stops its process; restore starts a killed one again or
// clears its failure mode); table actions go to the director's ipvsadm.
func (r *run) apply(ctx context.Context, act FaultAction, target string, f *Fault) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch act {
	case Weight:
		for _, d := range r.dests[target] {
			if err := r.ipvsadm(d.SetWeight(f.Weight.Value)); err != nil {
				return err
			}
		}
		return nil
	case Add, Remove:
		for _, d := range r.dests[target] {
			args := d.Add()
			if act == Remove {
				args = d.Delete()
			}
			if err := r.ipvsadm(args); err != nil {
				return err
			}
		}
		return nil
	}
	if act == Link {
		return r.link(target, f, true)
	}
	if act == Restore && f.Link != "" {
		return r.link(target, f, false)
	}
	agents, kind := r.servers, RealServerAgent
	if _, ok := r.directors[target]; ok {
		agents, kind = r.directors, engine.AgentKind
	}
	a := agents[target]
	if a == nil {
		return fmt.Errorf("node %s runs no built-in real server", target)
	}
	select {
	case <-a.Done():
		if act != Restore {
			return fmt.Errorf("%s on %s is not running (kill it once, restore it before the next fault)", kind, target)
		}
		// A restarted director starts from the scenario's table, as a
		// rebooted one loads its saved rules: connections are forgotten.
		na, err := r.in.StartAgent(target, kind, r.serverArgs[target]...)
		if err != nil {
			return err
		}
		agents[target] = na
		return nil
	default:
	}
	if kind == engine.AgentKind && act != Kill {
		return fmt.Errorf("a director can be killed and restored, not %s", act)
	}
	if act == Kill {
		return a.Stop(2 * time.Second)
	}
	mode := f.RealServerFault().String()
	if act == Restore {
		mode = "none"
	}
	_, err := callAgent(ctx, a.Socket, faultRequest{Fault: mode})
	return err
}

func (r *run) ipvsadm(args []string) error {
	if r.director == "" {
		return fmt.Errorf("the lab has no running director")
	}
	var out, errb bytes.Buffer
	code, err := engine.Ipvsadm(r.director, args, nil, &out, &errb)
	if err == nil && code != 0 {
		err = fmt.Errorf("ipvsadm %s: %s", strings.Join(args, " "), strings.TrimSpace(errb.String()))
	}
	return err
}

// errorsDuring says how many requests failed while a fault lasted (until
// the end of the run when it is not restored), from the time series.
func errorsDuring(rep *reports.Report, f reports.Fault) string {
	ts := rep.Timeseries
	if ts.IntervalS <= 0 || len(ts.Errors) == 0 {
		return ""
	}
	from := int(f.AtS / ts.IntervalS)
	to := len(ts.Errors)
	if f.ForS > 0 {
		to = min(to, int((f.AtS+f.ForS)/ts.IntervalS)+1)
	}
	var n uint64
	for i := from; i < to && i >= 0; i++ {
		n += ts.Errors[i]
	}
	return fmt.Sprintf("%d errors from %.0fs to %.0fs", n, float64(from)*ts.IntervalS, float64(to)*ts.IntervalS)
}

// detection fills in when the health checks noticed a server-side fault
// (the first down transition of its target at or after it) and when they
// put the server back after its restore.
func (r *run) detection(f *reports.Fault, events []HealthEvent) []string {
	switch FaultAction(f.Action) {
	case Kill, Hang, Slow, Reset, ErrorOf, Refuse:
	default:
		return nil
	}
	var out []string
	at := r.t0.Add(secondsOf(f.AtS))
	for _, e := range events {
		if e.Node == f.Target && !e.Sorry && !e.Up && !e.At.Before(at) {
			d := e.At.Sub(at).Seconds()
			f.DetectedAfterS = &d
			out = append(out, fmt.Sprintf("health check took it out after %.2fs", d))
			break
		}
	}
	if f.DetectedAfterS == nil {
		return append(out, "no health check noticed it")
	}
	restored := r.restoredAt(f)
	for _, e := range events {
		if e.Node == f.Target && !e.Sorry && e.Up && !restored.IsZero() && !e.At.Before(restored) {
			d := e.At.Sub(restored).Seconds()
			f.ReaddedAfterS = &d
			out = append(out, fmt.Sprintf("back in %.2fs after its restore", d))
			break
		}
	}
	return out
}

// restoredAt is when fault f ends: its for:, or the next restore of its
// target (zero when nothing restores it).
func (r *run) restoredAt(f *reports.Fault) time.Time {
	at := r.t0.Add(secondsOf(f.AtS))
	if f.ForS > 0 {
		return at.Add(secondsOf(f.ForS))
	}
	return r.restoreAfter(f.Target, at)
}

func secondsOf(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// recovery fills in how long after fault i's restore (its start when it
// has none) the load's errors stopped, looking no further than the next
// fault's start.
func (r *run) recovery(rep *reports.Report, i int) {
	f := &rep.Faults[i]
	from := f.AtS
	if t := r.restoredAt(f); !t.IsZero() {
		from = t.Sub(r.t0).Seconds()
	}
	until := math.Inf(1)
	for _, g := range rep.Faults {
		if g.AtS > from {
			until = min(until, g.AtS)
		}
	}
	f.RecoveredAfterS = recoveredAfter(rep.Timeseries, from, until)
}

// recoveredAfter is the time from `from` to the end of the last interval
// of the series that had errors, among those from the one holding `from`
// to the last that ends by until (one the next fault shares would blame
// this fault for its errors), when an interval with load and no errors
// follows it; nil when the errors never stopped (or no load was measured
// there). Zero when no interval there had errors.
func recoveredAfter(ts reports.Timeseries, from, until float64) *float64 {
	step := ts.IntervalS
	if step <= 0 {
		return nil
	}
	first := max(int(from/step), 0)
	last, clean := -1, false
	for k := first; k < len(ts.Errors) && float64(k+1)*step <= until; k++ {
		switch {
		case ts.Errors[k] > 0:
			last, clean = k, false
		case ts.RPS[k] > 0:
			clean = true
		}
	}
	if !clean {
		return nil
	}
	d := 0.0
	if last >= 0 {
		d = max(float64(last+1)*step-from, 0)
	}
	d = math.Round(d*1000) / 1000
	return &d
}

// healthSummary counts each checked real server's transitions: downs,
// and flaps (a down followed by an up); and how often each service's
// sorry server went in.
func healthSummary(events []HealthEvent, specs []checkSpec) []reports.Health {
	var out []reports.Health
	index := map[[2]string]int{}
	for _, c := range specs {
		key := [2]string{c.Dest.Node, c.Dest.Service}
		if _, ok := index[key]; !ok {
			index[key] = len(out)
			out = append(out, reports.Health{Node: key[0], Service: key[1], Up: true})
		}
	}
	for _, c := range specs {
		if c.Sorry == nil {
			continue
		}
		key := [2]string{c.Sorry.Node, c.Dest.Service}
		if _, ok := index[key]; !ok {
			index[key] = len(out)
			out = append(out, reports.Health{Node: key[0], Service: key[1], Sorry: true})
		}
	}
	for _, e := range events {
		i, ok := index[[2]string{e.Node, e.Service}]
		if !ok || e.Sorry != out[i].Sorry {
			continue
		}
		h := &out[i]
		switch {
		case h.Sorry:
			if e.Up {
				h.Ins++
			}
		case !e.Up && h.Up:
			h.Downs++
		case e.Up && !h.Up:
			h.Flaps++
		}
		h.Up = e.Up
	}
	return out
}

// restoreAfter is when a restore fault on node follows at (zero if none).
func (r *run) restoreAfter(node string, at time.Time) time.Time {
	var best time.Time
	for i := range r.s.Faults {
		f := &r.s.Faults[i]
		if act, target, _ := f.Action(); act != Restore || target != node {
			continue
		}
		t, _ := r.s.FaultTimes(f, r.opt.Scale)
		if ts := r.t0.Add(t); !ts.Before(at) && (best.IsZero() || ts.Before(best)) {
			best = ts
		}
	}
	return best
}

// faultTable is the nftables table a loss fault adds to a node.
const faultTable = "lvsfault"

// link applies (or, with on false, undoes) a link fault on node: every
// packet dropped both ways (down) or a random share of them (loss), with
// an nftables table of the node's own; an egress rate limit on each of its
// interfaces (tbf); a delay with jitter each way (topo/impair: netem, or
// the userspace delay line where the kernel has no netem). Down keeps the
// carrier: taking the interface down would also drop its routes. Loss,
// rate and delay combine; with netem the rate limit goes beneath the
// delay's qdisc, and comes off before it.
func (r *run) link(node string, f *Fault, on bool) error {
	n := r.in.Lab.Node(node)
	ld, _ := f.LinkDelay() // checked by Parse
	if on && f.Delay != "" {
		if err := r.startDelay(node, f, ld); err != nil {
			return err
		}
	}
	var cmds [][]string
	if f.Rate != "" {
		im := r.delays[f]
		cmds = rateCommands(len(n.Interfaces), f.Rate, im != nil && im.Mechanism() == impair.Netem, on)
	}
	if f.Loss != "" || f.Down {
		verdict := "drop"
		if f.Loss != "" {
			pct, _ := lossPercent(f.Loss)
			verdict = fmt.Sprintf("numgen random mod 100 < %d drop", pct)
		}
		if on {
			cmds = append(cmds, []string{"nft", fmt.Sprintf(`table inet %s {
	chain in { type filter hook prerouting priority -300; iifname != "lo" %s; }
	chain out { type filter hook postrouting priority 300; oifname != "lo" %s; }
}`, faultTable, verdict, verdict)})
		} else {
			cmds = append(cmds, []string{"nft", "delete", "table", "inet", faultTable})
		}
	}
	var errs []error
	for _, c := range cmds {
		if out, err := r.in.Output(node, c[0], c[1:]...); err != nil {
			errs = append(errs, fmt.Errorf("%s: %v %s", strings.Join(c, " "), err, out))
			if on {
				break
			}
		}
	}
	if !on && r.delays[f] != nil {
		errs = append(errs, r.stopDelay(f))
	}
	return errors.Join(errs...)
}

// rateCommands set (or, with on false, remove) a rate limit on each of a
// node's interfaces: a tbf qdisc at the root, or beneath the netem qdisc
// of a delay on the same interfaces.
func rateCommands(ifaces int, rate string, underNetem, on bool) [][]string {
	parent := []string{"root"}
	if underNetem {
		parent = []string{"parent", impair.NetemChild}
	}
	var cmds [][]string
	for i := range ifaces {
		dev := []string{"dev", topo.IfName(i)}
		if on {
			cmds = append(cmds, slices.Concat([]string{"tc", "qdisc", "replace"}, dev, parent, []string{"tbf", "rate", rate, "burst", "32kbit", "latency", "400ms"}))
		} else {
			cmds = append(cmds, slices.Concat([]string{"tc", "qdisc", "del"}, dev, parent))
		}
	}
	return cmds
}

// startDelay puts fault f's delay on node's links. Each delay fault draws
// its jitter from the run's seed and its own place in the scenario.
func (r *run) startDelay(node string, f *Fault, ld LinkDelay) error {
	seed := r.opt.Seed
	for i := range r.s.Faults {
		if &r.s.Faults[i] == f {
			seed = seed*1000003 + uint64(i)
		}
	}
	im, err := impair.Start(r.in, node, impair.Config{Delay: ld.Delay, Jitter: ld.Jitter, Reorder: ld.Reorder, Seed: seed})
	if err != nil {
		return err
	}
	if r.delays == nil {
		r.delays = map[*Fault]*impair.Impairment{}
		r.delayStats = map[*Fault]impair.Stats{}
	}
	r.delays[f] = im
	return nil
}

// stopDelay ends fault f's delay and keeps what the delay line counted.
func (r *run) stopDelay(f *Fault) error {
	st, err := r.delays[f].Stop()
	r.delayStats[f] = st
	delete(r.delays, f)
	return err
}

// linkEffect is what a link delay did, for fault i's report: the load's
// median latency before the fault and while it lasted (from the time
// series), and what the delay line moved and dropped.
func (r *run) linkEffect(rep *reports.Report, i int) []string {
	f := &r.s.Faults[i]
	if f.Link == "" || f.Delay == "" {
		return nil
	}
	ld, _ := f.LinkDelay()
	mech := r.in.Features.DelayMechanism()
	what := fmt.Sprintf("delay %s", ld.Delay)
	if ld.Jitter > 0 {
		what += fmt.Sprintf(" ± %s", ld.Jitter)
	}
	if ld.Reorder {
		what += ", reordering"
	}
	out := []string{fmt.Sprintf("%s each way (%s)", what, mech)}
	if before, during, ok := p50Shift(rep.Timeseries, rep.Faults[i]); ok {
		out = append(out, fmt.Sprintf("p50 %.1fms before, %.1fms during", before, during))
	}
	if mech == impair.Userspace {
		st, done := r.delayStats[f]
		if !done && r.delays[f] != nil {
			st = r.delays[f].Stats()
		}
		line := fmt.Sprintf("delay line: %d frames and %d dropped from %s, %d and %d dropped to it",
			st.FromNode.Frames, st.FromNode.Dropped, f.Link, st.ToNode.Frames, st.ToNode.Dropped)
		if st.CPUSeconds > 0 {
			line += fmt.Sprintf(", %.2fs of CPU", st.CPUSeconds)
		}
		out = append(out, line)
	}
	return out
}

// p50Shift is the median of the per-interval p50 latencies of the series
// before fault f and of those wholly inside it, skipping intervals
// without load.
func p50Shift(ts reports.Timeseries, f reports.Fault) (before, during float64, ok bool) {
	step := ts.IntervalS
	if step <= 0 {
		return 0, 0, false
	}
	end := math.Inf(1)
	if f.ForS > 0 {
		end = f.AtS + f.ForS
	}
	var b, d []float64
	for k, p := range ts.P50MS {
		if k >= len(ts.RPS) || ts.RPS[k] <= 0 {
			continue
		}
		from, to := float64(k)*step, float64(k+1)*step
		switch {
		case to <= f.AtS:
			b = append(b, p)
		case from >= f.AtS && to <= end:
			d = append(d, p)
		}
	}
	if len(b) == 0 || len(d) == 0 {
		return 0, 0, false
	}
	return median(b), median(d), true
}

func median(v []float64) float64 {
	slices.Sort(v)
	m := v[len(v)/2]
	if len(v)%2 == 0 {
		m = (m + v[len(v)/2-1]) / 2
	}
	return math.Round(m*10) / 10
}
