package loadgen

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/lvslab/lvslab/loadgen/wire"
	"github.com/lvslab/lvslab/reports/metrics"
)

// Run runs one load phase and returns what it measured. It returns when
// every request has an outcome: at most Duration plus Timeout after it
// started, or sooner when ctx ends (no new requests after that).
//
// Each worker is an event loop on its own OS thread over non-blocking
// sockets and epoll, like wrk's: a goroutine per connection would cost more
// than the kernel's share of a loopback connection.
func Run(ctx context.Context, cfg Config) (*metrics.Result, error) {
	if err := cfg.Check(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	base := time.Now()
	workers := make([]*worker, cfg.Workers)
	for i := range workers {
		w, err := newWorker(&cfg, i, base)
		if err != nil {
			for _, w := range workers[:i] {
				unix.Close(w.ep)
			}
			return nil, err
		}
		workers[i] = w
	}
	var wg, live sync.WaitGroup
	if cfg.Progress != nil {
		ch := make(chan sealed, 4*len(workers))
		for _, w := range workers {
			w.progress = ch
		}
		live.Go(func() { collect(ch, len(workers), cfg.Progress) })
		defer func() {
			close(ch)
			live.Wait()
		}()
	}
	for _, w := range workers {
		wg.Go(func() { w.run(ctx) })
	}
	wg.Wait()
	res := workers[0].result
	var errs []error
	for _, w := range workers {
		errs = append(errs, w.err)
		if w != workers[0] {
			if err := res.Merge(w.result); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return res, errors.Join(errs...)
}

type connState uint8

const (
	stFree      connState = iota // no socket
	stIdle                       // a kept-alive connection without a request
	stSending                    // connecting, or the request is partly written
	stReceiving                  // waiting for (the rest of) the response
)

// conn is one request slot: at most one request in flight on at most one socket.
type conn struct {
	fd       int
	cgen     uint32 // bumps with every socket opened here; tags epoll events
	rgen     uint32 // bumps with every request; tags timeouts
	state    connState
	fresh    bool // no response yet on this socket: the next one is a new connection's
	wantOut  bool // the socket is watched for EPOLLOUT
	reused   bool // the request runs on a kept-alive connection (retried once if it was closed under us)
	intended int64
	off      int
	seq      uint32
	resp     response
	client   netip.AddrPort // the source address the socket is bound to, if any, with the target port
}

// deadline is a timeout entry; stale entries (gen moved on) are skipped.
type deadline struct {
	slot int32
	gen  uint32
	at   int64
}

// lingerer holds a socket whose response is complete until the server's
// FIN arrives: the server closes first, so TIME_WAIT stays on its side and
// the client does not run out of ports.
type lingerer struct {
	fd  int
	gen uint32
}

type worker struct {
	cfg     *Config
	index   int
	base    time.Time
	end     int64 // no new requests at or after this offset
	timeout int64
	ep      int

	rec    *metrics.Recorder
	out    metrics.Outcome
	result *metrics.Result
	err    error

	conns    []conn
	free     []int32 // slots without a socket
	idle     []int32 // slots with a kept-alive connection
	inflight int
	pending  ring[int64] // open loop: intended times waiting for a slot
	timeouts ring[deadline]

	lingers        []lingerer
	lingerFree     []int32
	lingerTimeouts ring[deadline]
	lingering      int

	events    []unix.EpollEvent
	ev        unix.EpollEvent
	ts        unix.Timespec
	buf       []byte
	req       []byte
	targetRaw unsafe.Pointer // the target as a raw sockaddr, for connect
	targetLen uintptr
	family    int
	stype     int
	srcs      []unix.Sockaddr
	srcAt     int

	// holdP makes the worker wait in epoll without handing its P back to the
	// scheduler: most waits outlast the 20 µs after which the runtime would
	// give the P to another thread, and taking it back costs a futex round
	// trip per request (13% of a core at 100k requests/s). Safe only while
	// other Ps remain for the rest of the process; signals still preempt
	// the wait for the GC and the scheduler.
	holdP bool

	peerClosed bool // the event being handled says the server has sent its FIN

	progress chan<- sealed // nil without Config.Progress
	sealed   int           // intervals before this one went to progress

	scheduling  bool
	dispatching bool
	open        bool
	next        int64 // open loop: next intended send
	k           float64
	gap         float64 // ns between this worker's sends (mean, for Poisson)
	rng         *rand.Rand
}

const lingerTime = int64(time.Second)

func newWorker(cfg *Config, index int, base time.Time) (*worker, error) {
	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("loadgen: epoll: %w", err)
	}
	w := &worker{
		cfg: cfg, index: index, base: base, ep: ep,
		end:     int64(cfg.Duration),
		timeout: int64(cfg.Timeout),
		rec:     metrics.NewRecorder(base, cfg.Interval),
		events:  make([]unix.EpollEvent, 256),
		buf:     make([]byte, 64<<10),
		req:     buildRequest(cfg),
		open:    cfg.OpenLoop(),
		holdP:   cfg.Workers < runtime.GOMAXPROCS(0),
		family:  unix.AF_INET,
		stype:   unix.SOCK_STREAM,
	}
	if cfg.Target.Addr().Is4() {
		sa := &unix.RawSockaddrInet4{Family: unix.AF_INET, Addr: cfg.Target.Addr().As4()}
		binary.BigEndian.PutUint16((*[2]byte)(unsafe.Pointer(&sa.Port))[:], cfg.Target.Port())
		w.targetRaw, w.targetLen = unsafe.Pointer(sa), unsafe.Sizeof(*sa)
	} else {
		w.family = unix.AF_INET6
		sa := &unix.RawSockaddrInet6{Family: unix.AF_INET6, Addr: cfg.Target.Addr().As16()}
		binary.BigEndian.PutUint16((*[2]byte)(unsafe.Pointer(&sa.Port))[:], cfg.Target.Port())
		w.targetRaw, w.targetLen = unsafe.Pointer(sa), unsafe.Sizeof(*sa)
	}
	if cfg.Kind == wire.UDP {
		w.stype = unix.SOCK_DGRAM
	}
	// Spread the sources: worker i starts i/W of the way into the range.
	for _, a := range cfg.Sources {
		w.srcs = append(w.srcs, sockaddr(netip.AddrPortFrom(a, 0)))
	}
	if len(w.srcs) > 0 {
		w.srcAt = index * len(w.srcs) / cfg.Workers
	}
	slots := share(cfg.Concurrency, cfg.Workers, index)
	w.conns = make([]conn, slots)
	w.free = make([]int32, 0, slots)
	w.idle = make([]int32, 0, slots)
	for i := slots - 1; i >= 0; i-- {
		w.conns[i] = conn{fd: -1, resp: response{kind: cfg.Kind, header: strings.ToLower(cfg.ServerHeader)}}
		w.free = append(w.free, int32(i))
	}
	if w.open {
		// Worker i takes sends i, i+W, i+2W, … of the whole schedule.
		w.gap = float64(time.Second) / cfg.Rate * float64(cfg.Workers)
		if cfg.Arrival == Poisson {
			w.rng = rand.New(rand.NewPCG(cfg.Seed, uint64(index)))
			w.next = int64(w.rng.ExpFloat64() * w.gap)
		} else {
			w.next = int64(float64(index) * float64(time.Second) / cfg.Rate)
		}
	}
	return w, nil
}

// share is worker i's part of n split over w workers.
func share(n, w, i int) int {
	s := n / w
	if i < n%w {
		s++
	}
	return s
}

func sockaddr(ap netip.AddrPort) unix.Sockaddr {
	if ap.Addr().Is4() {
		return &unix.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()}
	}
	return &unix.SockaddrInet6{Port: int(ap.Port()), Addr: ap.Addr().As16()}
}

// buildRequest returns the bytes every request of the phase sends (tcp and
// udp requests get their sequence number written per send).
func buildRequest(cfg *Config) []byte {
	if cfg.Kind != wire.HTTP {
		b := make([]byte, cfg.RequestBytes)
		for i := range b {
			b[i] = 'x'
		}
		var flags uint32
		if cfg.KeepAlive {
			flags = wire.FlagKeepAlive
		}
		wire.PutRequest(b, uint32(len(b)), flags, 0)
		return b
	}
	method := "GET"
	if cfg.RequestBytes > 0 {
		method = "POST"
	}
	h := fmt.Sprintf("%s %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: lvslab\r\n", method, cfg.Path, cfg.Host)
	if cfg.RequestBytes > 0 {
		h += fmt.Sprintf("Content-Type: application/octet-stream\r\nContent-Length: %d\r\n", cfg.RequestBytes)
	}
	if !cfg.KeepAlive {
		h += "Connection: close\r\n"
	}
	b := append([]byte(h), "\r\n"...)
	for range cfg.RequestBytes {
		b = append(b, 'x')
	}
	return b
}

func (w *worker) now() int64 { return int64(time.Since(w.base)) }

func (w *worker) run(ctx context.Context) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	// Wake on time for sends microseconds apart (the default slack is 50 µs).
	unix.Prctl(unix.PR_SET_TIMERSLACK, 1, 0, 0, 0)
	defer unix.Close(w.ep)

	w.scheduling = true
	done := ctx.Done()
	for {
		now := w.now()
		select {
		case <-done:
			w.end = min(w.end, now)
			done = nil
		default:
		}
		if !w.open && w.scheduling && now >= w.end {
			// An open loop stops in arrivals, once it has scheduled every
			// send before the end, however late this loop woke up.
			w.scheduling = false
		}
		if w.progress != nil {
			w.seal(int(now/int64(w.cfg.Interval)), false)
		}
		w.expire(now)
		if w.open {
			w.arrivals(now)
		} else if w.scheduling {
			w.refill(now)
		}
		if !w.scheduling && w.inflight == 0 && w.pending.len() == 0 && w.lingering == 0 {
			break
		}
		wake := w.nextWake()
		if w.progress != nil {
			wake = min(wake, int64(w.sealed+1)*int64(w.cfg.Interval))
		}
		if err := w.wait(wake - now); err != nil {
			w.err = err
			break
		}
	}
	w.closeAll()
	end := w.now()
	if w.progress != nil {
		w.seal(int(end/int64(w.cfg.Interval))+1, true)
	}
	w.result = w.rec.Finish(time.Duration(end))
}

// sealed is a run of a worker's finished intervals, for the live view.
type sealed struct {
	worker int
	from   int
	ivs    []metrics.Interval
	last   bool // the worker has finished
}

// seal sends the intervals before `to` that were not sent yet.
func (w *worker) seal(to int, last bool) {
	if to <= w.sealed && !last {
		return
	}
	w.progress <- sealed{worker: w.index, from: w.sealed, ivs: w.rec.Seal(w.sealed, to), last: last}
	w.sealed = max(w.sealed, to)
}

// collect merges the workers' sealed intervals and hands each to progress
// once every worker has sealed it (or finished).
func collect(ch <-chan sealed, workers int, progress func(int, metrics.Interval)) {
	upto := make([]int, workers)
	done := make([]bool, workers)
	merged := map[int]*metrics.Interval{}
	next, highest := 0, 0
	for m := range ch {
		for k := range m.ivs {
			i := m.from + k
			if merged[i] == nil {
				iv := metrics.NewInterval()
				merged[i] = &iv
			}
			merged[i].Merge(&m.ivs[k])
			highest = max(highest, i+1)
		}
		upto[m.worker] = max(upto[m.worker], m.from+len(m.ivs))
		done[m.worker] = done[m.worker] || m.last
		ready := highest
		for w := range workers {
			if !done[w] {
				ready = min(ready, upto[w])
			}
		}
		for ; next < ready; next++ {
			iv := merged[next]
			if iv == nil {
				empty := metrics.NewInterval()
				iv = &empty
			}
			delete(merged, next)
			progress(next, *iv)
		}
	}
}

// take returns a slot for a new request: a kept-alive connection first.
func (w *worker) take() int32 {
	if n := len(w.idle); n > 0 {
		i := w.idle[n-1]
		w.idle = w.idle[:n-1]
		return i
	}
	n := len(w.free)
	i := w.free[n-1]
	w.free = w.free[:n-1]
	return i
}

// arrivals queues the open loop's due sends and starts as many as slots allow.
func (w *worker) arrivals(now int64) {
	for w.scheduling && w.next <= now {
		if w.next >= w.end {
			w.scheduling = false
			break
		}
		w.rec.Scheduled()
		w.pending.push(w.next)
		if w.rng != nil {
			w.next += int64(w.rng.ExpFloat64() * w.gap)
		} else {
			w.k++
			w.next = int64((float64(w.index) + w.k*float64(w.cfg.Workers)) * float64(time.Second) / w.cfg.Rate)
		}
	}
	w.dispatch()
}

// dispatch starts queued open-loop requests while slots are free. It does
// not nest: a request that fails at once frees its slot for the loop here.
func (w *worker) dispatch() {
	if w.dispatching {
		return
	}
	w.dispatching = true
	for w.pending.len() > 0 && len(w.idle)+len(w.free) > 0 {
		w.send(w.take(), w.pending.pop())
	}
	w.dispatching = false
}

// refill gives every free closed-loop slot its next request. Each slot gets
// one try per round, so a target that refuses at once cannot spin here.
func (w *worker) refill(now int64) {
	for n := len(w.conns); n > 0 && len(w.idle)+len(w.free) > 0; n-- {
		w.rec.Scheduled()
		w.send(w.take(), now)
	}
}

func (w *worker) nextWake() int64 {
	t := int64(math.MaxInt64)
	if w.open && w.scheduling {
		t = min(t, w.next)
	}
	if !w.open && w.scheduling {
		if len(w.idle)+len(w.free) > 0 {
			return 0 // requests that ended within the last round
		}
		t = min(t, w.end)
	}
	if w.timeouts.len() > 0 {
		t = min(t, w.timeouts.front().at)
	}
	if w.pending.len() > 0 {
		t = min(t, w.pending.front()+w.timeout)
	}
	if w.lingerTimeouts.len() > 0 {
		t = min(t, w.lingerTimeouts.front().at)
	}
	return t
}

// wait blocks in epoll for at most d nanoseconds and handles what arrived.
func (w *worker) wait(d int64) error {
	d = max(0, min(d, int64(time.Second)))
	w.ts = unix.NsecToTimespec(d)
	syscall6 := unix.Syscall6
	if w.holdP {
		syscall6 = unix.RawSyscall6
	}
	n, _, errno := syscall6(unix.SYS_EPOLL_PWAIT2, uintptr(w.ep),
		uintptr(unsafe.Pointer(&w.events[0])), uintptr(len(w.events)),
		uintptr(unsafe.Pointer(&w.ts)), 0, 0)
	switch errno {
	case 0:
	case unix.EINTR:
		return nil
	case unix.ENOSYS:
		// Before Linux 5.11: millisecond timeouts.
		m, err := unix.EpollWait(w.ep, w.events, int((d+int64(time.Millisecond)-1)/int64(time.Millisecond)))
		if err != nil && err != unix.EINTR {
			return fmt.Errorf("loadgen: epoll_wait: %w", err)
		}
		n = uintptr(max(m, 0))
	default:
		return fmt.Errorf("loadgen: epoll_pwait2: %w", errno)
	}
	for _, ev := range w.events[:n] {
		if ev.Fd < 0 {
			w.lingerEvent(^ev.Fd, uint32(ev.Pad))
			continue
		}
		c := &w.conns[ev.Fd]
		if c.cgen != uint32(ev.Pad) || c.state == stFree {
			continue // a socket closed earlier in this batch
		}
		if c.state == stSending {
			w.write(ev.Fd)
		}
		if c.state == stReceiving || c.state == stIdle {
			w.peerClosed = ev.Events&(unix.EPOLLRDHUP|unix.EPOLLHUP) != 0
			w.read(ev.Fd)
			w.peerClosed = false
		}
	}
	return nil
}

// send starts a request intended at the given time on slot i.
func (w *worker) send(i int32, intended int64) {
	c := &w.conns[i]
	c.rgen++
	c.intended = intended
	c.resp.reset()
	w.inflight++
	w.timeouts.push(deadline{slot: i, gen: c.rgen, at: intended + w.timeout})
	c.reused = c.state == stIdle
	if !c.reused {
		if err := w.dial(i); err != nil {
			w.fail(i, classify(err))
			return
		}
	}
	w.begin(i)
}

// begin writes a request on slot i's connected (or connecting) socket.
func (w *worker) begin(i int32) {
	c := &w.conns[i]
	c.state, c.off = stSending, 0
	if w.cfg.Kind == wire.UDP {
		c.seq++
		wire.PutRequest(w.req, uint32(len(w.req)), wire.Request(w.req).Flags(), c.seq)
	}
	w.write(i)
}

// dial opens a socket on slot i, binds the next source address, and starts connecting.
func (w *worker) dial(i int32) error {
	fd, err := sysSocket(w.family, w.stype|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
	if err != nil {
		return err
	}
	if len(w.srcs) > 0 {
		if w.stype == unix.SOCK_STREAM {
			// Pick the port at connect time, per 4-tuple, not per source address.
			unix.SetsockoptInt(fd, unix.SOL_IP, unix.IP_BIND_ADDRESS_NO_PORT, 1)
		}
		err = unix.Bind(fd, w.srcs[w.srcAt])
		w.conns[i].client = netip.AddrPortFrom(w.cfg.Sources[w.srcAt], w.cfg.Target.Port())
		w.srcAt = (w.srcAt + 1) % len(w.srcs)
		if err != nil {
			sysClose(fd)
			return err
		}
	}
	if err := sysConnect(fd, w.targetRaw, w.targetLen); err != nil && err != unix.EINPROGRESS {
		sysClose(fd)
		return err
	}
	c := &w.conns[i]
	c.fd = fd
	c.cgen++
	c.fresh = true
	c.wantOut = false
	// No EPOLLOUT: the request is written at once, and only a connection
	// still in progress (or a full send buffer) asks for it (see write).
	// Watching it always would wake the loop for every ACK.
	w.ev.Events = unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLET
	w.ev.Fd, w.ev.Pad = i, int32(c.cgen)
	if err := sysEpollCtl(w.ep, unix.EPOLL_CTL_ADD, fd, &w.ev); err != nil {
		sysClose(fd)
		c.fd = -1
		return err
	}
	return nil
}

func (w *worker) write(i int32) {
	c := &w.conns[i]
	for c.off < len(w.req) {
		n, err := sysWrite(c.fd, w.req[c.off:])
		switch err {
		case nil:
			c.off += n
		case unix.EINTR:
		case unix.EAGAIN, unix.ENOTCONN:
			// Not connected yet, or the send buffer is full: wait for EPOLLOUT.
			if !c.wantOut {
				c.wantOut = true
				w.ev.Events = unix.EPOLLIN | unix.EPOLLOUT | unix.EPOLLRDHUP | unix.EPOLLET
				w.ev.Fd, w.ev.Pad = i, int32(c.cgen)
				if err := sysEpollCtl(w.ep, unix.EPOLL_CTL_MOD, c.fd, &w.ev); err != nil {
					w.fail(i, classify(err))
				}
			}
			return
		default:
			w.failOrRetry(i, err)
			return
		}
	}
	w.rec.Sent(len(w.req))
	c.state = stReceiving
	if w.cfg.Kind == wire.UDP {
		w.read(i) // the epoll edge for an early answer may have passed
	}
}

func (w *worker) read(i int32) {
	c := &w.conns[i]
	for {
		n, err := sysRead(c.fd, w.buf)
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			return
		case err != nil:
			if c.state == stIdle {
				w.drop(i)
				return
			}
			w.failOrRetry(i, err)
			return
		case n == 0 && w.cfg.Kind != wire.UDP:
			if c.state == stIdle {
				w.drop(i) // the server closed a kept-alive connection
				return
			}
			if done, _ := c.resp.eof(); done {
				w.complete(i, true)
				return
			}
			if c.reused && c.resp.got == 0 {
				w.retry(i)
				return
			}
			w.fail(i, metrics.ShortRead)
			return
		}
		if c.state == stIdle {
			if w.cfg.Kind == wire.UDP {
				continue // a late answer to a timed-out request
			}
			w.drop(i) // bytes nobody asked for
			return
		}
		if w.cfg.Kind == wire.UDP {
			if w.datagram(i, w.buf[:n]) {
				return
			}
			continue
		}
		done, perr := c.resp.feed(w.buf[:n])
		if perr != nil {
			w.fail(i, metrics.Other)
			return
		}
		if done {
			w.complete(i, false)
			return
		}
	}
}

// datagram takes one udp datagram; true when it completed the request.
func (w *worker) datagram(i int32, b []byte) bool {
	c := &w.conns[i]
	p := wire.Prefix(b)
	if p.Valid() {
		if p.Seq() != c.seq {
			return false // a late answer to an earlier request
		}
		c.resp.status = int(p.Status())
		c.resp.setServer(p.ID())
	} else {
		c.resp.status = 200 // not one of ours: any datagram answers
	}
	c.resp.got = len(b)
	if p.Valid() && len(b) < int(p.Length()) {
		w.fail(i, metrics.ShortRead)
		return true
	}
	w.complete(i, false)
	return true
}

// complete records a whole response on slot i and moves the slot on.
func (w *worker) complete(i int32, closed bool) {
	c := &w.conns[i]
	now := w.now()
	class := metrics.OK
	if c.resp.status >= 400 || c.resp.status < 100 {
		class = metrics.Status
	}
	w.out = metrics.Outcome{At: time.Duration(now), Class: class, Latency: time.Duration(now - c.intended),
		Server: c.resp.server(), NewConnection: c.fresh, Bytes: c.resp.got, Client: c.client}
	w.rec.Record(&w.out)
	c.fresh = false
	w.inflight--
	switch {
	case w.cfg.KeepAlive && !closed && !c.resp.close:
		c.state = stIdle
		w.idle = append(w.idle, i)
	case closed || w.cfg.Kind == wire.UDP:
		w.closeSlot(i)
	default:
		w.linger(i)
	}
	w.released()
}

// fail records a request on slot i that ended without a (good) response.
func (w *worker) fail(i int32, class metrics.Class) {
	c := &w.conns[i]
	now := w.now()
	w.out = metrics.Outcome{At: time.Duration(now), Class: class, Server: c.resp.server(), Bytes: c.resp.got, Client: c.client}
	w.rec.Record(&w.out)
	w.inflight--
	if c.fd >= 0 {
		w.closeSlot(i)
	} else {
		c.state = stFree
		w.free = append(w.free, i)
	}
	w.released()
}

// failOrRetry retries a request whose kept-alive connection the server had
// closed before it saw the request (the race every HTTP client retries).
func (w *worker) failOrRetry(i int32, err error) {
	c := &w.conns[i]
	if c.reused && c.resp.got == 0 && (err == unix.ECONNRESET || err == unix.EPIPE) {
		w.retry(i)
		return
	}
	w.fail(i, classify(err))
}

func (w *worker) retry(i int32) {
	c := &w.conns[i]
	sysClose(c.fd)
	c.fd, c.reused = -1, false
	if err := w.dial(i); err != nil {
		c.state = stFree
		w.fail(i, classify(err))
		return
	}
	w.begin(i)
}

// released lets an open loop give a freed slot to its backlog (a closed
// loop refills its slots in the main loop).
func (w *worker) released() {
	if w.open {
		w.dispatch()
	}
}

func (w *worker) closeSlot(i int32) {
	c := &w.conns[i]
	sysClose(c.fd)
	c.fd, c.state = -1, stFree
	w.free = append(w.free, i)
}

// drop closes a kept-alive connection that the server closed or broke.
func (w *worker) drop(i int32) {
	for k, j := range w.idle {
		if j == i {
			w.idle = append(w.idle[:k], w.idle[k+1:]...)
			break
		}
	}
	w.closeSlot(i)
}

// linger hands slot i's socket, whose response is complete, to a lingerer
// until the server's FIN arrives, and frees the slot.
func (w *worker) linger(i int32) {
	c := &w.conns[i]
	fd := c.fd
	c.fd, c.state = -1, stFree
	w.free = append(w.free, i)
	if w.peerClosed {
		sysClose(fd) // the event that brought the response brought the FIN too
		return
	}
	n, err := sysRead(fd, w.buf)
	if err != unix.EAGAIN || n > 0 {
		sysClose(fd) // FIN (or an error) is already here
		return
	}
	var li int32
	if n := len(w.lingerFree); n > 0 {
		li = w.lingerFree[n-1]
		w.lingerFree = w.lingerFree[:n-1]
	} else {
		li = int32(len(w.lingers))
		w.lingers = append(w.lingers, lingerer{})
	}
	l := &w.lingers[li]
	l.fd = fd
	l.gen++
	w.ev.Events = unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLET
	w.ev.Fd, w.ev.Pad = ^li, int32(l.gen)
	if sysEpollCtl(w.ep, unix.EPOLL_CTL_MOD, fd, &w.ev) != nil {
		sysClose(fd)
		w.lingerFree = append(w.lingerFree, li)
		return
	}
	w.lingering++
	w.lingerTimeouts.push(deadline{slot: li, gen: l.gen, at: w.now() + lingerTime})
}

func (w *worker) lingerEvent(li int32, gen uint32) {
	l := &w.lingers[li]
	if l.gen != gen || l.fd < 0 {
		return
	}
	for {
		n, err := sysRead(l.fd, w.buf)
		if err == unix.EINTR || (err == nil && n > 0) {
			continue
		}
		if err == unix.EAGAIN {
			return
		}
		w.unlinger(li)
		return
	}
}

func (w *worker) unlinger(li int32) {
	l := &w.lingers[li]
	sysClose(l.fd)
	l.fd = -1
	l.gen++
	w.lingering--
	w.lingerFree = append(w.lingerFree, li)
}

// expire times out requests past their deadline, including those still
// waiting for a slot, and gives up on lingering sockets.
func (w *worker) expire(now int64) {
	for w.timeouts.len() > 0 {
		d := w.timeouts.front()
		c := &w.conns[d.slot]
		if c.rgen == d.gen && (c.state == stSending || c.state == stReceiving) {
			if d.at > now {
				break
			}
			w.timeouts.pop()
			w.fail(d.slot, metrics.Timeout)
			continue
		}
		w.timeouts.pop()
	}
	for w.pending.len() > 0 && w.pending.front()+w.timeout <= now {
		w.pending.pop()
		w.out = metrics.Outcome{At: time.Duration(now), Class: metrics.Timeout}
		w.rec.Record(&w.out)
	}
	for w.lingerTimeouts.len() > 0 && w.lingerTimeouts.front().at <= now {
		d := w.lingerTimeouts.pop()
		if l := &w.lingers[d.slot]; l.gen == d.gen && l.fd >= 0 {
			w.unlinger(d.slot)
		}
	}
}

func (w *worker) closeAll() {
	for i := range w.conns {
		if c := &w.conns[i]; c.fd >= 0 {
			sysClose(c.fd)
			c.fd = -1
		}
	}
	for li := range w.lingers {
		if l := &w.lingers[li]; l.fd >= 0 {
			sysClose(l.fd)
			l.fd = -1
		}
	}
}

// classify maps a socket error onto an outcome class.
func classify(err error) metrics.Class {
	switch err {
	case unix.ECONNREFUSED:
		return metrics.Refused
	case unix.ECONNRESET, unix.EPIPE, unix.ECONNABORTED:
		return metrics.Reset
	case unix.ETIMEDOUT:
		return metrics.Timeout
	}
	return metrics.Other
}
