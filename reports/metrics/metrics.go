// Package metrics is the measurement model shared by the load generator (which
// records into it) and the reports (which read it): outcome classes, latency
// HDR histograms, per-real-server counts and a per-interval time series.
//
// A Result is mergeable: the runner adds up the Results of several client
// nodes (or of several generator workers) with Merge, aligning their time
// series on wall-clock start times. Results travel between processes as JSON
// (histograms in the HdrHistogram V2 compressed encoding).
package metrics

import (
	"fmt"
	"net/netip"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// Class is the outcome of one request.
type Class uint8

const (
	OK        Class = iota // a complete response with a success status
	Refused                // connection refused (RST to the SYN, ICMP port unreachable)
	Reset                  // connection reset or broken pipe after connecting
	Timeout                // no complete response within the timeout of its intended send time
	ShortRead              // the peer closed before the response was complete
	Status                 // a complete response with an error status (HTTP >= 400)
	Other                  // anything else: no route, no local port, a malformed response
	NumClasses
)

var classNames = [NumClasses]string{"ok", "refused", "reset", "timeout", "short_read", "status", "other"}

func (c Class) String() string {
	if c < NumClasses {
		return classNames[c]
	}
	return fmt.Sprintf("class(%d)", uint8(c))
}

// Latency histograms count microseconds, from 1 µs to an hour, with three
// significant digits overall and two per interval (an interval histogram is
// ~20 KB; there is one per second).
const (
	latencyMax         = int64(time.Hour / time.Microsecond)
	totalSigFigs       = 3
	intervalSigFigs    = 2
	DefaultInterval    = time.Second
	unattributedServer = ""
)

// NewLatencyHistogram returns an empty histogram with the geometry every
// total latency histogram of a Result has.
func NewLatencyHistogram() *hdrhistogram.Histogram {
	return hdrhistogram.New(1, latencyMax, totalSigFigs)
}

func newIntervalHistogram() *hdrhistogram.Histogram {
	return hdrhistogram.New(1, latencyMax, intervalSigFigs)
}

// ServerCounts is what the client side saw one real server serve.
type ServerCounts struct {
	Connections uint64 `json:"connections"` // connections whose first response named this server
	Requests    uint64 `json:"requests"`    // responses it produced (any status)
	Bytes       uint64 `json:"bytes"`       // response bytes it sent
}

func (s *ServerCounts) add(o ServerCounts) {
	s.Connections += o.Connections
	s.Requests += o.Requests
	s.Bytes += o.Bytes
}

// Interval is one step of the time series; outcomes fall into the interval in
// which they became known (completion, error or timeout).
type Interval struct {
	Outcomes      [NumClasses]uint64
	BytesReceived uint64
	Latency       *hdrhistogram.Histogram // successful responses only
	Connections   map[string]uint64       // new connections per real server
}

// Errors is the number of outcomes other than OK in the interval.
func (iv *Interval) Errors() uint64 {
	var n uint64
	for c := Refused; c < NumClasses; c++ {
		n += iv.Outcomes[c]
	}
	return n
}

func (iv *Interval) merge(o *Interval) {
	for c := range iv.Outcomes {
		iv.Outcomes[c] += o.Outcomes[c]
	}
	iv.BytesReceived += o.BytesReceived
	iv.Latency.Merge(o.Latency)
	for id, n := range o.Connections {
		iv.Connections[id] += n
	}
}

func newInterval() Interval {
	return Interval{Latency: newIntervalHistogram(), Connections: map[string]uint64{}}
}

// Result is everything one load phase measured, on one client or merged over several.
type Result struct {
	Start    time.Time     // wall clock of the phase's time zero (the first intended send)
	Interval time.Duration // step of Series
	Elapsed  time.Duration // from Start to the last outcome

	Scheduled     uint64 // requests the arrival process asked for (open loop) or started (closed loop)
	Sent          uint64 // requests written to the wire
	Outcomes      [NumClasses]uint64
	BytesSent     uint64
	BytesReceived uint64
	Latency       *hdrhistogram.Histogram // successful responses, µs from the intended send time
	Servers       map[string]*ServerCounts
	// Clients counts new connections per client and real server, for
	// connections bound to a source address (a client's source_addresses):
	// where persistence sent each client. A client is its source address
	// with the port it connected to (Outcome.Client).
	Clients map[netip.AddrPort]map[string]uint64
	Series  []Interval
}

// NewResult returns an empty Result with time zero start.
func NewResult(start time.Time, interval time.Duration) *Result {
	if interval <= 0 {
		interval = DefaultInterval
	}
	return &Result{Start: start, Interval: interval, Latency: NewLatencyHistogram(), Servers: map[string]*ServerCounts{}}
}

// Requests is the number of requests with an outcome.
func (r *Result) Requests() uint64 {
	var n uint64
	for _, v := range r.Outcomes {
		n += v
	}
	return n
}

// Errors is the number of requests whose outcome was not OK.
func (r *Result) Errors() uint64 { return r.Requests() - r.Outcomes[OK] }

// interval returns the series step covering offset at, growing the series.
func (r *Result) interval(i int) *Interval {
	for len(r.Series) <= i {
		r.Series = append(r.Series, newInterval())
	}
	return &r.Series[i]
}

// Merge adds o into r. The series are aligned on their Start times (rounded
// to whole intervals); r keeps the earlier Start. Both must use the same interval.
func (r *Result) Merge(o *Result) error {
	if o.Interval != r.Interval {
		return fmt.Errorf("metrics: cannot merge a %v series into a %v series", o.Interval, r.Interval)
	}
	shift := int(o.Start.Sub(r.Start).Round(r.Interval) / r.Interval)
	if shift < 0 {
		// o starts earlier: move r's series right and take o's start.
		moved := make([]Interval, -shift, -shift+len(r.Series))
		for i := range moved {
			moved[i] = newInterval()
		}
		r.Series = append(moved, r.Series...)
		r.Elapsed += r.Start.Sub(o.Start)
		r.Start = o.Start
		shift = 0
	}
	for i := range o.Series {
		r.interval(shift + i).merge(&o.Series[i])
	}
	if e := o.Start.Sub(r.Start) + o.Elapsed; e > r.Elapsed {
		r.Elapsed = e
	}
	r.Scheduled += o.Scheduled
	r.Sent += o.Sent
	for c := range r.Outcomes {
		r.Outcomes[c] += o.Outcomes[c]
	}
	r.BytesSent += o.BytesSent
	r.BytesReceived += o.BytesReceived
	r.Latency.Merge(o.Latency)
	for id, sc := range o.Servers {
		r.server(id).add(*sc)
	}
	for a, m := range o.Clients {
		for id, n := range m {
			r.client(a)[id] += n
		}
	}
	return nil
}

func (r *Result) client(a netip.AddrPort) map[string]uint64 {
	if r.Clients == nil {
		r.Clients = map[netip.AddrPort]map[string]uint64{}
	}
	m := r.Clients[a]
	if m == nil {
		m = map[string]uint64{}
		r.Clients[a] = m
	}
	return m
}

func (r *Result) server(id string) *ServerCounts {
	sc := r.Servers[id]
	if sc == nil {
		sc = &ServerCounts{}
		r.Servers[id] = sc
	}
	return sc
}
