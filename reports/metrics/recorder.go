package metrics

import (
	"maps"
	"net/netip"
	"time"
)

// Outcome is one request's result as the generator hands it to a Recorder.
type Outcome struct {
	At            time.Duration // since the Result's Start: when the outcome became known
	Class         Class
	Latency       time.Duration // from the intended send time; recorded for OK only
	Server        []byte        // the real server's name from the response; nil when unknown
	NewConnection bool          // the first response on its connection
	Bytes         int           // response bytes received
	// Client is the source address the connection was bound to, with
	// the port it was sent to (the service port: a port-0 persistent
	// service keeps a client on one real server across ports); invalid
	// when the generator left the source address to the kernel.
	Client netip.AddrPort
}

// Recorder fills one Result from one goroutine. Record does not allocate
// once a real server's name has been seen and the current interval exists.
type Recorder struct {
	res     *Result
	ids     map[string]int
	names   []string
	servers []ServerCounts
	// conns counts new connections per server index in the interval cur; it
	// is folded into that interval's map when the series moves on.
	cur   int
	conns []uint64
	// clients counts new connections per client address and server index.
	clients map[clientServer]uint64
}

type clientServer struct {
	client netip.AddrPort
	server int
}

// NewRecorder starts an empty Result at start.
func NewRecorder(start time.Time, interval time.Duration) *Recorder {
	return &Recorder{res: NewResult(start, interval), ids: map[string]int{}, clients: map[clientServer]uint64{}}
}

// Scheduled counts a request the arrival process asked for.
func (r *Recorder) Scheduled() { r.res.Scheduled++ }

// Sent counts a request written to the wire with its size.
func (r *Recorder) Sent(bytes int) {
	r.res.Sent++
	r.res.BytesSent += uint64(bytes)
}

func (r *Recorder) serverIndex(name []byte) int {
	if i, ok := r.ids[string(name)]; ok {
		return i
	}
	s := string(name)
	i := len(r.names)
	r.ids[s] = i
	r.names = append(r.names, s)
	r.servers = append(r.servers, ServerCounts{})
	r.conns = append(r.conns, 0)
	return i
}

// Record adds one outcome.
func (r *Recorder) Record(o *Outcome) {
	res := r.res
	res.Outcomes[o.Class]++
	res.BytesReceived += uint64(o.Bytes)
	i := int(o.At / res.Interval)
	if i < 0 {
		i = 0
	}
	if i != r.cur {
		r.flush()
		r.cur = i
	}
	iv := res.interval(i)
	iv.Outcomes[o.Class]++
	iv.BytesReceived += uint64(o.Bytes)
	if o.Class == OK {
		us := o.Latency.Microseconds()
		us = min(max(us, 1), latencyMax)
		res.Latency.RecordValue(us)
		iv.Latency.RecordValue(us)
	}
	if o.Server == nil && o.Bytes == 0 {
		return // no response: nobody to attribute it to
	}
	s := r.serverIndex(o.Server)
	sc := &r.servers[s]
	sc.Requests++
	sc.Bytes += uint64(o.Bytes)
	if o.NewConnection {
		sc.Connections++
		r.conns[s]++
		if o.Client.IsValid() {
			r.clients[clientServer{o.Client, s}]++
		}
	}
}

func (r *Recorder) flush() {
	if r.cur >= len(r.res.Series) {
		return
	}
	m := r.res.Series[r.cur].Connections
	for s, n := range r.conns {
		if n != 0 {
			m[r.names[s]] += n
			r.conns[s] = 0
		}
	}
}

// Finish closes the Result: elapsed is the time from Start to the last outcome.
// The Recorder must not be used afterwards.
func (r *Recorder) Finish(elapsed time.Duration) *Result {
	r.flush()
	r.res.Elapsed = elapsed
	for s, name := range r.names {
		sc := r.servers[s]
		r.res.Servers[name] = &sc
	}
	for k, n := range r.clients {
		r.res.client(k.client)[r.names[k.server]] += n
	}
	res := r.res
	r.res = nil
	return res
}

// Seal returns copies of the intervals from `from` up to (not including)
// `to`, which the caller promises will get no more outcomes (their time has
// passed), for a live view while the Recorder keeps recording.
func (r *Recorder) Seal(from, to int) []Interval {
	if from >= to {
		return nil
	}
	if r.cur < to {
		r.flush()
	}
	r.res.interval(to - 1)
	out := make([]Interval, to-from)
	for i := range out {
		iv := &r.res.Series[from+i]
		out[i] = Interval{Outcomes: iv.Outcomes, BytesReceived: iv.BytesReceived, Latency: iv.Latency.Clone(), Connections: maps.Clone(iv.Connections)}
	}
	return out
}

// Merge adds o into iv.
func (iv *Interval) Merge(o *Interval) { iv.merge(o) }

// NewInterval returns an empty interval.
func NewInterval() Interval { return newInterval() }
