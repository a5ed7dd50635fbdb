// Package engine is the running director: the core of package dataplane
// joined to real interfaces inside the director's network namespace. Frames
// come in on AF_PACKET sockets (packetio), are classified (parse), decided
// by the core (In, Out, InRelated, OutRelated), rewritten (xmit: NAT both
// ways, DR by MAC rewrite, TUN by IPIP with the MTU rule) and sent on the
// interface the route to their next hop leaves by, with link addresses from
// the namespace's neighbour table (the kernel resolves on demand). IPv4
// fragments are reassembled before the core sees them and datagrams are
// fragmented again on the way out, as nf_defrag and ip_fragment do
// (fragments.go); Stats and the control socket show every counter.
//
// Only traffic to the virtual services and the replies of masqueraded
// connections are the engine's: the director's own stack still answers ARP
// and talks on its own addresses. The kernel never handles VIP traffic
// itself (the lab drops it in nft netdev ingress, after the packet taps) and
// does not forward (ip_forward=0), so nothing is answered or forwarded twice.
// A BPF filter on each socket (packetio.Classifier) keeps the rest — above
// all DR and TUN replies, which the kernel routes past — from being copied
// to the engine at all. Firewall-mark services are the exception: the taps
// run before any nft rule has marked a packet, so a new connection's first
// packet comes to the engine through the netfilter queue, after the
// operator's rules (fwmark.go).
//
// One core serves every packet: the packet goroutines (one by default;
// Config.Workers in fanout groups that steer both directions of a
// connection to one worker), the control path (ipvsadm) and a clock ticker
// share it through one mutex, taken once per batch of frames, and send
// outside it. The core is single-threaded by design, and one core (not one
// per worker) keeps the kernel's semantics: every scheduler sees every new
// connection of its service, in arrival order. Deciding a packet costs
// about 0.4 µs (BenchmarkNAT); the system calls around it cost ten times
// more. On two shared cores a second worker brought nothing measurable for
// one flow and cost 10–25 % more CPU per packet at 16 connections
// (fwdbench's BenchmarkDirector with -director.workers 2), so one stays
// the default.
package engine

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/lvslab/lvslab/dataplane"
	"github.com/lvslab/lvslab/dataplane/defrag"
	"github.com/lvslab/lvslab/dataplane/header"
	"github.com/lvslab/lvslab/dataplane/ipvsadm"
	"github.com/lvslab/lvslab/dataplane/packetio"
	"github.com/lvslab/lvslab/dataplane/parse"
	"github.com/lvslab/lvslab/scheduler"
)

// Config configures an engine.
type Config struct {
	// Interfaces are the interfaces the director forwards on; every
	// non-loopback interface that is up when empty.
	Interfaces []string
	// Batch is the largest number of frames read or written at once.
	Batch int
	// Workers is the number of packet goroutines, each with its own socket
	// on every interface in a fanout group steered by the client's endpoint
	// (packetio.Classifier): both directions of a connection meet the same
	// worker, and none of a flow's packets is reordered. They share the
	// core through the engine's lock; 1 when zero.
	Workers int
	// Profile is the kernel bookkeeping profile of the core.
	Profile scheduler.Profile
	// Tick is how often the core's clock advances without traffic
	// (connection expiry, the rate estimator); 1 s when zero.
	Tick time.Duration
	// Services, if set, is told the keys of the address-port services
	// (fwmark services have none) whenever they change: the agent keeps the
	// kernel's drop sets equal to them, so the director's own stack answers
	// every other packet to a virtual address.
	Services func(added, removed []dataplane.ServiceKey)
	// FragTimeout is how long a datagram's fragments wait for the rest
	// (net.ipv4.ipfrag_time); 30 s when zero.
	FragTimeout time.Duration
}

// Counters are the engine's own counters (the core keeps IPVS's).
type Counters struct {
	Frames     uint64 // frames received
	Reasons    parse.Counters
	In, Out    uint64           // packets forwarded to real servers, replies to clients
	ICMPIn     uint64           // related ICMP errors relayed towards real servers
	ICMPOut    uint64           // related ICMP errors relayed towards clients
	Replies    uint64           // ICMP errors the director sent (port unreachable, frag needed, time exceeded)
	Segmented  uint64           // GSO packets split for a tunnel
	Dropped    uint64           // VIP packets the core dropped or did not take
	NoRoute    uint64           // packets without a route or a resolved next hop
	Unsendable uint64           // packets a transmitter refused (UDP GSO in a tunnel, more fragments than a worker has buffers)
	Fragmented uint64           // packets sent in fragments (reassembled datagrams, non-DF packets over the MTU)
	Defrag     defrag.Counters  // the reassembly of received fragments
	Queued     uint64           // packets of firewall-mark services read from the netfilter queue
	QueueErrs  uint64           // verdicts the kernel did not take
	Socket     []packetio.Stats // per interface, summed over the workers
}

// Engine is a running director.
type Engine struct {
	cfg      Config
	mu       sync.Mutex // guards everything below, and the core
	core     *dataplane.Director
	ctl      *dataplane.Control
	vips     map[netip.Addr]bool  // addresses of the services in keys
	natSrcs  map[netip.Addr]bool  // masquerading destinations ever configured
	cls      *packetio.Classifier // the sockets' filter and fanout program: their view of vips and natSrcs
	keys     map[dataplane.ServiceKey]bool
	marks    []uint32            // of the fwmark services, sorted
	markVIPs map[netip.Addr]bool // addresses fwmark services took connections to (the classifier has them)
	fwm      *markQueue          // the fwmark services' path, from the first one on
	markMu   sync.Mutex          // serialises syncMarks
	ns       netns.NsHandle      // the namespace the engine runs in
	hops     *nexthops
	ifs      []*iface
	cnt      Counters
	ipID     uint16
	frag     fragments
	sockets  []unix.TpacketStats // the kernel's packet socket statistics per interface, summed (reading resets them)
	workers  []*batch
	stop     chan struct{}
	wg       sync.WaitGroup
	errs     []error // each packet loop's, after it ends
}

// iface is one interface the director forwards on.
type iface struct {
	pos   int // in Engine.ifs, and in each worker's sockets and queues
	index int
	name  string
	mac   header.MAC
	mtu   int
}

// fanoutID is the first fanout group id of the engine's workers (one group
// per interface), unique in the director's namespace.
const fanoutID = 0x4c10

// Start opens the engine's sockets in the calling thread's network
// namespace (lock the thread, or run inside the director's agent) and starts
// forwarding with an empty service table.
func Start(cfg Config) (*Engine, error) {
	if cfg.Batch <= 0 {
		cfg.Batch = 64
	}
	if cfg.Tick <= 0 {
		cfg.Tick = time.Second
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 1
	}
	now := time.Now()
	e := &Engine{cfg: cfg, core: dataplane.New(cfg.Profile, now), vips: map[netip.Addr]bool{}, natSrcs: map[netip.Addr]bool{}, keys: map[dataplane.ServiceKey]bool{}, stop: make(chan struct{})}
	e.ctl = e.core.Control(time.Now)
	var err error
	if e.hops, err = newNexthops(); err != nil {
		return nil, err
	}
	if err = e.open(); err == nil {
		err = e.frag.openSender()
	}
	if err == nil {
		// The fwmark services' queue and table are set up later, from
		// whatever namespace ipvsadm is called in: they go here.
		e.ns, err = netns.Get()
	}
	if err != nil {
		e.closeSockets()
		e.hops.close()
		return nil, err
	}
	e.errs = make([]error, len(e.workers))
	e.wg.Add(len(e.workers) + 1)
	for i, w := range e.workers {
		go func() {
			defer e.wg.Done()
			e.errs[i] = e.loop(w)
		}()
	}
	go func() {
		defer e.wg.Done()
		e.tick()
	}()
	return e, nil
}

// open finds the interfaces the engine forwards on and opens each worker's
// socket on every one, and its poller.
func (e *Engine) open() error {
	names := e.cfg.Interfaces
	if len(names) == 0 {
		links, err := netlink.LinkList()
		if err != nil {
			return err
		}
		for _, l := range links {
			a := l.Attrs()
			if a.Flags&net.FlagLoopback == 0 && a.Flags&net.FlagUp != 0 && len(a.HardwareAddr) == 6 {
				names = append(names, a.Name)
			}
		}
	}
	if len(names) == 0 {
		return errors.New("engine: no interface to forward on")
	}
	for _, name := range names {
		ni, err := net.InterfaceByName(name)
		if err != nil {
			return fmt.Errorf("engine: %w", err)
		}
		if len(ni.HardwareAddr) != 6 {
			return fmt.Errorf("engine: interface %s has no Ethernet address", name)
		}
		ifc := &iface{pos: len(e.ifs), index: ni.Index, name: name, mtu: ni.MTU}
		copy(ifc.mac[:], ni.HardwareAddr)
		e.ifs = append(e.ifs, ifc)
	}
	// Each socket passes only what the engine forwards: the replies of
	// DR and TUN real servers, which the director's kernel routes, are not
	// copied to the engine only to be ignored.
	var err error
	if e.cls, err = packetio.NewClassifier(); err != nil {
		return fmt.Errorf("engine: %w", err)
	}
	for range e.cfg.Workers {
		w := newBatch(e.cfg.Batch, len(e.ifs))
		e.workers = append(e.workers, w)
		fds := make([]int, len(e.ifs))
		for i, ifc := range e.ifs {
			c := packetio.Config{Vnet: true, QdiscBypass: true, BufferBytes: 4 << 20, Filter: e.cls}
			if e.cfg.Workers > 1 {
				c.Fanout = &packetio.Fanout{ID: uint16(fanoutID + i), Steering: e.cls, Workers: e.cfg.Workers}
			}
			s, err := packetio.Open(ifc.index, e.cfg.Batch, c)
			if err != nil {
				return fmt.Errorf("engine: interface %s: %w", ifc.name, err)
			}
			w.socks[i] = s
			fds[i] = s.Fd()
		}
		var err error
		if w.poller, err = packetio.NewPoller(fds...); err != nil {
			return err
		}
	}
	return nil
}

// closeSockets closes what open opened.
func (e *Engine) closeSockets() {
	if e.cls != nil {
		e.cls.Close()
	}
	for _, w := range e.workers {
		if w.poller != nil {
			w.poller.Close()
		}
		for _, s := range w.socks {
			if s != nil {
				s.Close()
			}
		}
	}
}

// Close stops forwarding and releases the sockets.
func (e *Engine) Close() error {
	close(e.stop)
	for _, w := range e.workers {
		w.poller.Stop()
	}
	e.wg.Wait()
	errs := []error{e.closeMarks()}
	e.closeSockets()
	e.hops.close()
	e.frag.close()
	for i, err := range e.errs {
		if err != nil && !errors.Is(err, packetio.ErrStopped) {
			errs = append(errs, fmt.Errorf("worker %d: %w", i, err))
		}
	}
	return errors.Join(errs...)
}

// refreshTicks is how many ticks pass between re-reads of the next hops.
const refreshTicks = 10

// tick advances the core's clock while no traffic does, and keeps the
// next-hop cache fresh.
func (e *Engine) tick() {
	t := time.NewTicker(e.cfg.Tick)
	defer t.Stop()
	for n := 1; ; n++ {
		select {
		case <-e.stop:
			return
		case now := <-t.C:
			e.mu.Lock()
			e.core.Advance(now)
			e.expireFragments(now)
			e.mu.Unlock()
			if n%refreshTicks == 0 {
				e.hops.refresh()
			}
		}
	}
}

// Ipvsadm runs the ipvsadm program against the live core: args are its
// arguments (without the program name), stdin feeds -R. It returns the exit
// status.
func (e *Engine) Ipvsadm(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	e.mu.Lock()
	code := ipvsadm.Run(e.ctl, args, stdin, stdout, stderr)
	vips := e.vips
	added, removed, dests := e.syncServices(time.Now())
	if err := e.syncClassifier(vips); err != nil {
		// The table changed all the same; the sockets may not see the
		// address's packets (a full map): say so.
		fmt.Fprintf(stderr, "lvslab: %v\n", err)
	}
	e.mu.Unlock()
	if e.cfg.Services != nil && (len(added) > 0 || len(removed) > 0) {
		e.cfg.Services(added, removed)
	}
	if err := e.syncMarks(); err != nil {
		fmt.Fprintf(stderr, "lvslab: %v\n", err)
	}
	e.hops.resolve(dests)
	return code
}

// syncServices recomputes the service keys and virtual addresses after a
// control change and returns which keys changed and every destination
// address (to resolve early).
func (e *Engine) syncServices(now time.Time) (added, removed []dataplane.ServiceKey, dests []netip.Addr) {
	keys := map[dataplane.ServiceKey]bool{}
	vips := map[netip.Addr]bool{}
	var marks []uint32
	for _, s := range e.core.Services(now) {
		if k := s.Config.Key; k.FWMark == 0 {
			keys[k] = true
			vips[k.Addr] = true
		} else if !slices.Contains(marks, k.FWMark) {
			marks = append(marks, k.FWMark)
		}
		for _, d := range s.Dests {
			dests = append(dests, d.Config.Addr)
		}
	}
	for k := range keys {
		if !e.keys[k] {
			added = append(added, k)
		}
	}
	for k := range e.keys {
		if !keys[k] {
			removed = append(removed, k)
		}
	}
	slices.Sort(marks)
	e.keys, e.vips, e.marks = keys, vips, marks
	return added, removed, dests
}

// syncClassifier brings the classifier's virtual addresses from old to
// e.vips, and adds the masquerading destinations it does not have yet.
func (e *Engine) syncClassifier(old map[netip.Addr]bool) error {
	if e.cls == nil {
		return nil
	}
	var nat []netip.Addr
	for _, s := range e.core.Services(time.Now()) {
		for _, d := range s.Dests {
			if a := d.Config.Addr; d.Config.Method == dataplane.MethodMasq && !e.natSrcs[a] {
				e.natSrcs[a] = true
				nat = append(nat, a)
			}
		}
	}
	var added, removed []netip.Addr
	for a := range e.vips {
		if !old[a] {
			added = append(added, a)
		}
	}
	for a := range old {
		if !e.vips[a] && !e.markVIPs[a] {
			removed = append(removed, a)
		}
	}
	return errors.Join(e.cls.SetVIPs(added, removed), e.cls.AddNATSources(nat))
}

// Counters returns a copy of the engine's counters.
func (e *Engine) Counters() Counters {
	e.mu.Lock()
	defer e.mu.Unlock()
	c := e.cnt
	if e.frag.table != nil {
		c.Defrag = e.frag.table.Counters()
	}
	c.Socket = make([]packetio.Stats, len(e.ifs))
	for _, w := range e.workers {
		for i, s := range w.sockStats {
			c.Socket[i].Truncated += s.Truncated
			c.Socket[i].Outgoing += s.Outgoing
			c.Socket[i].SendErrs += s.SendErrs
		}
	}
	return c
}
