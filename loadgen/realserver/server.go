// Package realserver is the built-in real server: an http, tcp or udp sink
// with an identity, a response size, a service-time distribution and a
// capacity (a concurrency limit with a queue), whose failure mode can be
// switched at run time for fault injection.
//
// Every response names the server (the HTTP header wire.ServerHeader, or the
// wire prefix over tcp and udp), so the client side can attribute traffic to
// real servers even when the director never sees the replies (DR, TUN).
//
// The scenario runner drives a Server through its method set (Listen,
// SetFault, Stats, Close), from the agent inside the real server's namespace.
package realserver

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"net/textproto"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lvslab/lvslab/loadgen/wire"
)

// Config describes a real server.
type Config struct {
	Listen netip.AddrPort
	// Ports are further ports the server listens on, on Listen's address
	// (0: one the kernel chooses). It stays one server across them, with
	// one identity, capacity and failure mode, as the real server behind a
	// port-0 (all ports) or fwmark service is one machine.
	Ports []uint16
	Kind  wire.Kind
	ID    string // the name responses carry (at most wire.MaxIDLen bytes over tcp/udp)

	// ResponseBytes is the body size of an HTTP response, or the whole
	// response (prefix included, at least wire.PrefixLen) over tcp and udp.
	ResponseBytes int
	ServiceTime   Dist
	// MaxConcurrency is how many requests are served at once (0: no limit);
	// the others wait in a queue of at most MaxQueue (0: no limit) and are
	// rejected with status 503 beyond it.
	MaxConcurrency int
	MaxQueue       int
	// Header is the HTTP response header naming the server (default wire.ServerHeader).
	Header string
}

// MaxUDPResponse is the largest udp response (one IPv4 datagram).
const MaxUDPResponse = 65507

func (c *Config) check() error {
	switch {
	case !c.Listen.IsValid():
		return errors.New("realserver: no listen address")
	case c.Kind > wire.UDP:
		return fmt.Errorf("realserver: unknown kind %v", c.Kind)
	case c.ID == "":
		return errors.New("realserver: no id")
	case c.Kind != wire.HTTP && len(c.ID) > wire.MaxIDLen:
		return fmt.Errorf("realserver: id %q is longer than %d bytes", c.ID, wire.MaxIDLen)
	case c.ResponseBytes < 0:
		return fmt.Errorf("realserver: response bytes %d is negative", c.ResponseBytes)
	case c.Kind == wire.UDP && c.ResponseBytes > MaxUDPResponse:
		return fmt.Errorf("realserver: a udp response of %d bytes does not fit a datagram (max %d)", c.ResponseBytes, MaxUDPResponse)
	case c.MaxConcurrency < 0 || c.MaxQueue < 0:
		return errors.New("realserver: negative concurrency or queue limit")
	}
	return nil
}

// Stats are a server's counters since Listen.
type Stats struct {
	Connections uint64 `json:"connections"` // accepted tcp connections
	Requests    uint64 `json:"requests"`    // requests read
	Responses   uint64 `json:"responses"`   // successful responses written
	Errors      uint64 `json:"errors"`      // error-status responses (faults and a full queue)
	Resets      uint64 `json:"resets"`      // requests answered with a reset
	Rejected    uint64 `json:"rejected"`    // requests turned away because the queue was full
	Active      int64  `json:"active"`      // requests holding a service slot now
	Queued      int64  `json:"queued"`      // requests waiting for a slot now
	Hung        int64  `json:"hung"`        // requests held by a hang fault now
}

// faultState is the current fault; changed is closed when it is replaced,
// which wakes the requests a hang holds.
type faultState struct {
	Fault
	changed chan struct{}
}

// Server is a running built-in real server.
type Server struct {
	cfg  Config
	body []byte // response body (http) or filler after the prefix (tcp, udp)
	done chan struct{}

	fault atomic.Pointer[faultState]
	sem   chan struct{}

	// http header values, shared read-only by every response
	hdrKey     string
	hdrID      []string
	hdrLength  []string
	hdrNoBody  []string
	httpServer *http.Server

	mu     sync.Mutex // guards the listening sockets and conns
	addrs  []netip.AddrPort
	lns    []*net.TCPListener
	pcs    []*net.UDPConn
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup

	stats struct {
		connections, requests, responses, errors, resets, rejected atomic.Uint64
		active, queued, hung                                       atomic.Int64
	}
}

// Listen binds the server's socket and starts serving in the background.
func Listen(cfg Config) (*Server, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	if cfg.Header == "" {
		cfg.Header = wire.ServerHeader
	}
	n := cfg.ResponseBytes
	if cfg.Kind != wire.HTTP {
		n = max(n, wire.PrefixLen) - wire.PrefixLen
	}
	s := &Server{cfg: cfg, body: make([]byte, n), done: make(chan struct{}), conns: map[net.Conn]struct{}{}}
	for i := range s.body {
		s.body[i] = 'x'
	}
	if cfg.MaxConcurrency > 0 {
		s.sem = make(chan struct{}, cfg.MaxConcurrency)
	}
	s.fault.Store(&faultState{changed: make(chan struct{})})
	s.hdrKey = textproto.CanonicalMIMEHeaderKey(cfg.Header)
	s.hdrID = []string{cfg.ID}
	s.hdrLength = []string{strconv.Itoa(len(s.body))}
	s.hdrNoBody = []string{"0"}
	if cfg.Kind == wire.HTTP {
		s.httpServer = &http.Server{
			Handler:           s,
			ReadHeaderTimeout: 30 * time.Second,
			IdleTimeout:       120 * time.Second,
			ConnState: func(_ net.Conn, st http.ConnState) {
				if st == http.StateNew {
					s.stats.connections.Add(1)
				}
			},
		}
	}
	addrs := []netip.AddrPort{cfg.Listen}
	for _, p := range cfg.Ports {
		addrs = append(addrs, netip.AddrPortFrom(cfg.Listen.Addr(), p))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.listenLocked(addrs); err != nil {
		return nil, err
	}
	return s, nil
}

// listenLocked opens a socket on each of addrs and starts their serving
// goroutines; on error none stays open.
func (s *Server) listenLocked(addrs []netip.AddrPort) error {
	s.addrs = nil
	for _, ap := range addrs {
		if err := s.listenOneLocked(ap); err != nil {
			s.closeListenersLocked()
			s.addrs = addrs
			return fmt.Errorf("realserver %s: %w", s.cfg.ID, err)
		}
	}
	return nil
}

func (s *Server) listenOneLocked(ap netip.AddrPort) error {
	if s.cfg.Kind == wire.UDP {
		pc, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(ap))
		if err != nil {
			return err
		}
		sock, err := newUDPSocket(pc)
		if err != nil {
			pc.Close()
			return err
		}
		s.pcs = append(s.pcs, pc)
		s.addrs = append(s.addrs, pc.LocalAddr().(*net.UDPAddr).AddrPort())
		s.wg.Go(func() { s.serveUDP(sock) })
		return nil
	}
	ln, err := net.ListenTCP("tcp", net.TCPAddrFromAddrPort(ap))
	if err != nil {
		return err
	}
	s.lns = append(s.lns, ln)
	s.addrs = append(s.addrs, ln.Addr().(*net.TCPAddr).AddrPort())
	if s.cfg.Kind == wire.HTTP {
		s.wg.Go(func() { s.httpServer.Serve(ln) })
	} else {
		s.wg.Go(func() { s.acceptTCP(ln) })
	}
	return nil
}

// closeListenersLocked closes the listening sockets (a Refuse fault,
// Close); the addresses stay, to open them again.
func (s *Server) closeListenersLocked() {
	for _, ln := range s.lns {
		ln.Close()
	}
	for _, pc := range s.pcs {
		pc.Close()
	}
	s.lns, s.pcs = nil, nil
}

// Addr is the address the server listens on (with the port the kernel
// chose for port 0); the first of Addrs.
func (s *Server) Addr() netip.AddrPort {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addrs[0]
}

// Addrs are the addresses the server listens on: Listen's, then one per
// further port of Config.Ports.
func (s *Server) Addrs() []netip.AddrPort {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.addrs)
}

// ID is the server's name.
func (s *Server) ID() string { return s.cfg.ID }

// Fault is the current failure mode.
func (s *Server) Fault() Fault { return s.fault.Load().Fault }

// SetFault switches the failure mode. Requests a hang holds are released
// into the new mode; Refuse closes the listening socket and any other mode
// opens it again on the same address.
func (s *Server) SetFault(f Fault) error {
	switch {
	case f.Mode > Refuse:
		return fmt.Errorf("realserver %s: unknown fault mode %v", s.cfg.ID, f.Mode)
	case f.Mode == Reset && s.cfg.Kind == wire.UDP:
		return fmt.Errorf("realserver %s: reset has no meaning for udp (use hang or refuse)", s.cfg.ID)
	case f.Mode == Slow && f.Delay <= 0:
		return fmt.Errorf("realserver %s: slow needs a positive delay", s.cfg.ID)
	case f.Mode == ErrorStatus && f.Status == 0:
		f.Status = DefaultErrorStatus
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("realserver %s: closed", s.cfg.ID)
	}
	listening := len(s.lns)+len(s.pcs) > 0
	switch {
	case f.Mode == Refuse && listening:
		s.closeListenersLocked()
	case f.Mode != Refuse && !listening:
		if err := s.listenLocked(s.addrs); err != nil {
			return err
		}
	}
	old := s.fault.Swap(&faultState{Fault: f, changed: make(chan struct{})})
	close(old.changed)
	return nil
}

// Stats returns the current counters.
func (s *Server) Stats() Stats {
	st := &s.stats
	return Stats{
		Connections: st.connections.Load(), Requests: st.requests.Load(), Responses: st.responses.Load(),
		Errors: st.errors.Load(), Resets: st.resets.Load(), Rejected: st.rejected.Load(),
		Active: st.active.Load(), Queued: st.queued.Load(), Hung: st.hung.Load(),
	}
}

// Close stops the server: the socket closes, open connections close and
// held requests are dropped. It waits for the serving goroutines.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.done)
	s.closeListenersLocked()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	if s.httpServer != nil {
		s.httpServer.Close()
	}
	s.wg.Wait()
	return nil
}

// verdict is what the server does with one request after admission and faults.
type verdict struct {
	status int  // 200 or an error status
	reset  bool // answer with a reset instead
	drop   bool // the connection or the server went away: answer nothing
}

// handle runs one request through the queue, the current fault and the
// service time. gone fires when the client has gone away (nil if unknown).
func (s *Server) handle(gone <-chan struct{}) verdict {
	s.stats.requests.Add(1)
	for {
		fs := s.fault.Load()
		switch fs.Mode {
		case Hang:
			s.stats.hung.Add(1)
			select {
			case <-fs.changed:
				s.stats.hung.Add(-1)
				continue
			case <-gone:
			case <-s.done:
			}
			s.stats.hung.Add(-1)
			return verdict{drop: true}
		case Reset:
			s.stats.resets.Add(1)
			return verdict{reset: true}
		case ErrorStatus:
			s.stats.errors.Add(1)
			return verdict{status: fs.Status}
		}
		if !s.acquire(gone) {
			if s.isClosed() {
				return verdict{drop: true}
			}
			s.stats.rejected.Add(1)
			s.stats.errors.Add(1)
			return verdict{status: http.StatusServiceUnavailable}
		}
		d := s.cfg.ServiceTime.Sample(rand.Float64())
		if fs.Mode == Slow {
			d += fs.Delay
		}
		ok := s.wait(d, gone)
		s.release()
		if !ok {
			return verdict{drop: true}
		}
		s.stats.responses.Add(1)
		return verdict{status: http.StatusOK}
	}
}

func (s *Server) isClosed() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// acquire takes a service slot, waiting in the queue; false if the queue is
// full or the wait was abandoned.
func (s *Server) acquire(gone <-chan struct{}) bool {
	if s.sem == nil {
		s.stats.active.Add(1)
		return true
	}
	select {
	case s.sem <- struct{}{}:
		s.stats.active.Add(1)
		return true
	default:
	}
	if q := s.stats.queued.Add(1); s.cfg.MaxQueue > 0 && q > int64(s.cfg.MaxQueue) {
		s.stats.queued.Add(-1)
		return false
	}
	defer s.stats.queued.Add(-1)
	select {
	case s.sem <- struct{}{}:
		s.stats.active.Add(1)
		return true
	case <-gone:
	case <-s.done:
	}
	return false
}

func (s *Server) release() {
	s.stats.active.Add(-1)
	if s.sem != nil {
		<-s.sem
	}
}

// wait sleeps for the service time d; false if the client or server went away.
func (s *Server) wait(d time.Duration, gone <-chan struct{}) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-gone:
	case <-s.done:
	}
	return false
}

// ServeHTTP answers one HTTP request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	drain(r)
	v := s.handle(r.Context().Done())
	switch {
	case v.drop:
		return
	case v.reset:
		resetHTTP(w)
		return
	}
	h := w.Header()
	h[s.hdrKey] = s.hdrID
	if v.status != http.StatusOK {
		h["Content-Length"] = s.hdrNoBody
		w.WriteHeader(v.status)
		return
	}
	h["Content-Length"] = s.hdrLength
	w.WriteHeader(http.StatusOK)
	w.Write(s.body)
}

func drain(r *http.Request) {
	var buf [4096]byte
	for {
		if _, err := r.Body.Read(buf[:]); err != nil {
			return
		}
	}
}

func resetHTTP(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		return
	}
	c, _, err := hj.Hijack()
	if err != nil {
		return
	}
	abort(c)
}

// abort closes c with a reset (SO_LINGER 0) instead of a FIN.
func abort(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	c.Close()
}

func (s *Server) track(c net.Conn, add bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if add {
		if s.closed {
			return false
		}
		s.conns[c] = struct{}{}
	} else {
		delete(s.conns, c)
	}
	return true
}

func (s *Server) acceptTCP(ln *net.TCPListener) {
	for {
		c, err := ln.AcceptTCP()
		if err != nil {
			return
		}
		s.stats.connections.Add(1)
		if !s.track(c, true) {
			c.Close()
			return
		}
		s.wg.Go(func() {
			s.serveTCP(c)
			s.track(c, false)
		})
	}
}

// serveTCP answers the requests of one tcp connection. A request that does
// not start with the wire header (a person with nc) gets one response and
// the connection closes. The server closes first, so TIME_WAIT stays on the
// server side and the client does not run out of ports.
func (s *Server) serveTCP(c *net.TCPConn) {
	defer c.Close()
	in := make([]byte, 16<<10)
	total := len(s.body) + wire.PrefixLen
	out := make([]byte, total)
	copy(out[wire.PrefixLen:], s.body)
	for {
		n := readHeader(c, in)
		if n == 0 {
			return
		}
		var seq uint32
		keep := false
		if req := wire.Request(in[:n]); req.Valid() {
			seq = req.Seq()
			keep = req.Flags()&wire.FlagKeepAlive != 0
			for rest := int(req.Length()) - n; rest > 0; {
				m, err := c.Read(in[:min(rest, len(in))])
				if err != nil {
					return
				}
				rest -= m
			}
		}
		v := s.handle(nil)
		switch {
		case v.drop:
			return
		case v.reset:
			abort(c)
			return
		}
		resp := out
		if v.status != http.StatusOK {
			resp = out[:wire.PrefixLen]
		}
		wire.PutPrefix(resp, uint32(len(resp)), seq, uint16(v.status), s.cfg.ID)
		if _, err := c.Write(resp); err != nil || !keep {
			return
		}
	}
}

// readHeader reads until it holds a whole request header, or until the bytes
// read so far cannot start one (a foreign request, read as it came).
func readHeader(c net.Conn, in []byte) int {
	n := 0
	for n < wire.RequestLen && wire.MaybeRequest(in[:n]) {
		m, err := c.Read(in[n:])
		n += m
		if err != nil {
			break
		}
	}
	return n
}

func (s *Server) serveUDP(sock *udpSocket) {
	in := make([]byte, 64<<10)
	out := make([]byte, len(s.body)+wire.PrefixLen)
	copy(out[wire.PrefixLen:], s.body)
	inOOB, outOOB := make([]byte, oobLen), make([]byte, oobLen)
	for {
		n, from, local, err := sock.read(in, inOOB)
		if err != nil {
			return
		}
		var seq uint32
		if req := wire.Request(in[:n]); req.Valid() {
			seq = req.Seq()
		}
		fs := s.fault.Load()
		if fs.Mode == Healthy && s.cfg.ServiceTime.Zero() && s.sem == nil {
			s.stats.requests.Add(1)
			s.stats.responses.Add(1)
			s.replyUDP(sock, out, from, local, seq, http.StatusOK, outOOB)
			continue
		}
		s.wg.Go(func() {
			v := s.handle(nil)
			if v.drop {
				return
			}
			resp := make([]byte, len(out))
			copy(resp, out)
			s.replyUDP(sock, resp, from, local, seq, v.status, make([]byte, oobLen))
		})
	}
}

// replyUDP answers to from local, the address the request was sent to.
func (s *Server) replyUDP(sock *udpSocket, out []byte, to netip.AddrPort, local netip.Addr, seq uint32, status int, oob []byte) {
	if status != http.StatusOK {
		out = out[:wire.PrefixLen]
	}
	wire.PutPrefix(out, uint32(len(out)), seq, uint16(status), s.cfg.ID)
	sock.write(out, to, local, oob)
}

// Serve runs a server until ctx ends, then closes it: the standalone
// `lvslab serve` in one call.
func Serve(ctx context.Context, cfg Config, ready func(*Server)) error {
	s, err := Listen(cfg)
	if err != nil {
		return err
	}
	if ready != nil {
		ready(s)
	}
	<-ctx.Done()
	return s.Close()
}
