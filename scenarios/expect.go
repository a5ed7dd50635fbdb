package scenarios

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/lvslab/lvslab/reports"
)

// Expectation is one parsed `expect:` line, a comparison over the report:
//
//	errors < 1%                 error rate (a count without %)
//	p99 < 50ms                  latency percentiles p50 p90 p99 p999, max, mean
//	throughput_rps > 100        also throughput_bps, requests
//	jain > 0.95                 also weighted_jain, max_share_error
//	share(rs1) within 0.05 of weight_share(rs1)
//	connections(rs2) > 0
//	persistence_violations == 0 no client address reached two real servers
//	servers_per_client == 1     also: the most real servers one client reached
//	detected(rs2) < 1s          a health check took rs2 out this soon after its fault
//	recovered(rs2) < 3s         the load's errors stopped this soon after rs2's fault ended
//	p99 < 50ms during steady    a load metric of one phase (by its name) instead of all
type Expectation struct {
	Text      string
	Left      Operand
	Op        string // < <= > >= == != within
	Right     Operand
	Tolerance float64 // within
	// Phase is the load phase whose measurements the metrics read; empty
	// for all phases together.
	Phase string
}

// Operand is a metric of the report or a constant.
type Operand struct {
	Metric string // empty for a constant
	Arg    string // the real server of share(), weight_share(), connections()
	Const  float64
}

// metrics known to expectations and what unit their constants take.
var metricUnits = map[string]string{
	"errors": "count", "error_rate": "ratio", "requests": "count",
	"throughput_rps": "number", "throughput_bps": "number",
	"p50": "ms", "p90": "ms", "p99": "ms", "p999": "ms", "max": "ms", "mean": "ms",
	"jain": "number", "weighted_jain": "number", "max_share_error": "number",
	"share": "ratio", "weight_share": "ratio", "connections": "count", "detected": "ms",
	"recovered": "ms", "persistence_violations": "count", "servers_per_client": "count",
}

// faultMetrics are about the faults of the run, not its load: no phase
// scopes them.
var faultMetrics = map[string]bool{"detected": true, "recovered": true}

var withArg = map[string]bool{"share": true, "weight_share": true, "connections": true, "detected": true, "recovered": true}

var comparisons = []string{"<=", ">=", "==", "!=", "<", ">"}

// ParseExpectation reads one expectation.
func ParseExpectation(text string) (*Expectation, error) {
	e := &Expectation{Text: text}
	rest := strings.TrimSpace(text)
	if i := strings.LastIndex(rest+" ", " during "); i >= 0 {
		rest, e.Phase = rest[:i], strings.TrimSpace(rest[i+len(" during"):])
		if e.Phase == "" {
			return nil, fmt.Errorf(`"during" needs a load phase's name: p99 < 50ms during steady`)
		}
	}
	var err error
	if e.Left, rest, err = parseOperand(rest); err != nil {
		return nil, err
	}
	if e.Left.Metric == "" {
		return nil, fmt.Errorf("starts with a metric (%s)", metricList())
	}
	rest = strings.TrimSpace(rest)
	if w, ok := strings.CutPrefix(rest, "within "); ok {
		e.Op = "within"
		tol, after, ok := strings.Cut(strings.TrimSpace(w), " of ")
		if !ok {
			return nil, fmt.Errorf(`"within" reads: A within TOLERANCE of B`)
		}
		if e.Tolerance, err = constant(strings.TrimSpace(tol), e.Left.unit()); err != nil {
			return nil, err
		}
		rest = strings.TrimSpace(after)
	} else {
		for _, op := range comparisons {
			if r, ok := strings.CutPrefix(rest, op); ok {
				e.Op, rest = op, strings.TrimSpace(r)
				break
			}
		}
		if e.Op == "" {
			return nil, fmt.Errorf("expected a comparison (<, <=, >, >=, ==, !=, within) after %s, got %q", e.Left, rest)
		}
	}
	if e.Left.Metric == "errors" && strings.HasSuffix(rest, "%") {
		e.Left.Metric = "error_rate" // errors < 1% compares the rate
	}
	if _, ok := metricUnits[leadingWord(rest)]; ok {
		var after string
		if e.Right, after, err = parseOperand(rest); err != nil {
			return nil, err
		}
		if after = strings.TrimSpace(after); after != "" {
			return nil, fmt.Errorf("unexpected %q at the end", after)
		}
	} else if e.Right.Const, err = constant(rest, e.Left.unit()); err != nil {
		return nil, err
	}
	for _, o := range []Operand{e.Left, e.Right} {
		if e.Phase != "" && faultMetrics[o.Metric] {
			return nil, fmt.Errorf("%s is about faults, not a load phase: it takes no during", o)
		}
	}
	return e, nil
}

func (o Operand) String() string {
	switch {
	case o.Metric == "":
		return strconv.FormatFloat(o.Const, 'g', -1, 64)
	case o.Arg != "":
		return o.Metric + "(" + o.Arg + ")"
	}
	return o.Metric
}

func (o Operand) unit() string { return metricUnits[o.Metric] }

// parseOperand reads a metric (with its argument) off the front of s, or
// nothing when s starts with a constant.
func parseOperand(s string) (Operand, string, error) {
	word := leadingWord(s)
	if word == "" {
		return Operand{}, s, nil
	}
	if _, ok := metricUnits[word]; !ok {
		return Operand{}, s, fmt.Errorf("unknown metric %q (known: %s)", word, metricList())
	}
	o, rest := Operand{Metric: word}, s[len(word):]
	if withArg[word] {
		inner, ok := strings.CutPrefix(rest, "(")
		arg, after, closed := strings.Cut(inner, ")")
		if !ok || !closed || strings.TrimSpace(arg) == "" {
			return o, rest, fmt.Errorf("%s needs a real server: %s(rs1)", word, word)
		}
		o.Arg, rest = strings.TrimSpace(arg), after
	}
	return o, rest, nil
}

// leadingWord is the identifier s starts with ("" if none).
func leadingWord(s string) string {
	i := strings.IndexFunc(s, func(r rune) bool { return !(unicode.IsLetter(r) || r == '_' || unicode.IsDigit(r)) })
	if i < 0 {
		i = len(s)
	}
	if i == 0 || !unicode.IsLetter(rune(s[0])) {
		return ""
	}
	return s[:i]
}

// constant reads a number in the unit of the metric it is compared with:
// latencies take durations (50ms, 0.5s) or plain milliseconds, ratios take
// fractions or percentages.
func constant(s, unit string) (float64, error) {
	if s == "" {
		return 0, fmt.Errorf("expected a value at the end")
	}
	if p, ok := strings.CutSuffix(s, "%"); ok {
		v, err := strconv.ParseFloat(p, 64)
		if err != nil || unit != "ratio" {
			return 0, fmt.Errorf("%q: a percentage compares a rate or a share", s)
		}
		return v / 100, nil
	}
	if v, err := strconv.ParseFloat(s, 64); err == nil {
		return v, nil
	}
	if d, err := time.ParseDuration(s); err == nil && unit == "ms" {
		return float64(d) / float64(time.Millisecond), nil
	}
	if unit == "ms" {
		return 0, fmt.Errorf("%q is not a duration like 50ms", s)
	}
	return 0, fmt.Errorf("%q is not a number", s)
}

func metricList() string {
	return "errors, error_rate, requests, throughput_rps, throughput_bps, p50, p90, p99, p999, max, mean, " +
		"jain, weighted_jain, max_share_error, share(RS), weight_share(RS), connections(RS), " +
		"persistence_violations, servers_per_client, detected(RS), recovered(RS)"
}

// Evaluate checks the expectation on r and returns its verdict with the
// measured value (for within: the distance between the two sides).
func (e *Expectation) Evaluate(r *reports.Report) reports.Expectation {
	out := reports.Expectation{Text: e.Text}
	l, err := e.load(r)
	var left float64
	if err == nil {
		left, err = e.Left.value(r, l)
	}
	if err == nil {
		var right float64
		if right, err = e.Right.value(r, l); err == nil {
			out.Value = left
			switch e.Op {
			case "within":
				out.Value = math.Abs(left - right)
				out.Passed = out.Value <= e.Tolerance
				out.Detail = fmt.Sprintf("%s = %.4g, %s = %.4g", e.Left, left, e.Right, right)
			case "<":
				out.Passed = left < right
			case "<=":
				out.Passed = left <= right
			case ">":
				out.Passed = left > right
			case ">=":
				out.Passed = left >= right
			case "==":
				out.Passed = left == right
			case "!=":
				out.Passed = left != right
			}
		}
	}
	if err != nil {
		out.Detail = err.Error()
	}
	return out
}

// load is what the expectation's load metrics read: the phase it names,
// or all phases together.
func (e *Expectation) load(r *reports.Report) (*reports.Load, error) {
	if e.Phase == "" {
		return r.Load, nil
	}
	for i := range r.Phases {
		if r.Phases[i].Name == e.Phase {
			return &r.Phases[i], nil
		}
	}
	if len(r.Phases) == 0 && r.Load != nil && r.Load.Name == e.Phase {
		return r.Load, nil // the only phase
	}
	return nil, fmt.Errorf("load phase %q measured nothing", e.Phase)
}

func (o Operand) value(r *reports.Report, l *reports.Load) (float64, error) {
	if o.Metric == "" {
		return o.Const, nil
	}
	switch o.Metric {
	case "detected":
		for _, f := range r.Faults {
			if f.Target == o.Arg && f.DetectedAfterS != nil {
				return *f.DetectedAfterS * 1000, nil
			}
		}
		return 0, fmt.Errorf("no health check noticed a fault of %s", o.Arg)
	case "recovered":
		return recovered(r, o.Arg)
	}
	if l == nil {
		return 0, fmt.Errorf("the run measured no load")
	}
	switch o.Metric {
	case "errors":
		return float64(l.Errors), nil
	case "error_rate":
		return l.ErrorRate, nil
	case "requests":
		return float64(l.Requests), nil
	case "throughput_rps":
		return l.ThroughputRPS, nil
	case "throughput_bps":
		return l.ThroughputBPS, nil
	case "p50":
		return l.LatencyMS.P50, nil
	case "p90":
		return l.LatencyMS.P90, nil
	case "p99":
		return l.LatencyMS.P99, nil
	case "p999":
		return l.LatencyMS.P999, nil
	case "max":
		return l.LatencyMS.Max, nil
	case "mean":
		return l.LatencyMS.Mean, nil
	case "jain", "weighted_jain", "max_share_error":
		if l.Fairness == nil {
			return 0, fmt.Errorf("no real server named itself in a response: no split to measure")
		}
		return map[string]float64{"jain": l.Fairness.Jain, "weighted_jain": l.Fairness.WeightedJain,
			"max_share_error": l.Fairness.MaxShareError}[o.Metric], nil
	case "persistence_violations", "servers_per_client":
		if l.Clients == nil {
			return 0, fmt.Errorf("no connection came from a client source address (give the client source_addresses)")
		}
		if o.Metric == "servers_per_client" {
			return float64(l.Clients.MaxServersPerClient), nil
		}
		return float64(l.Clients.PersistenceViolations), nil
	}
	for _, s := range l.Realservers {
		if s.ID == o.Arg {
			switch o.Metric {
			case "share":
				return s.Share, nil
			case "weight_share":
				return s.WeightShare, nil
			default:
				return float64(s.Connections), nil
			}
		}
	}
	if o.Metric == "connections" || o.Metric == "share" {
		return 0, nil // it served nothing
	}
	return 0, fmt.Errorf("no real server %q served this run", o.Arg)
}

// recovered is, in milliseconds, the longest recovery of the faults on
// node: every one of them must have recovered.
func recovered(r *reports.Report, node string) (float64, error) {
	worst, any := 0.0, false
	for _, f := range r.Faults {
		if f.Target != node || FaultAction(f.Action) == Restore {
			continue
		}
		if f.RecoveredAfterS == nil {
			return 0, fmt.Errorf("the errors after the %s of %s at %gs never stopped", f.Action, node, f.AtS)
		}
		worst, any = max(worst, *f.RecoveredAfterS*1000), true
	}
	if !any {
		return 0, fmt.Errorf("no fault on %s", node)
	}
	return worst, nil
}
