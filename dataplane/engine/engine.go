// Package engine is the running director: the core of package dataplane
// joined to real interfaces inside the director's network namespace. Frames
// come in on AF_PACKET sockets (packetio), are classified (parse), decided
// by the core (In, Out, InRelated, OutRelated), rewritten (xmit: NAT both
// ways, DR by MAC rewrite, TUN by IPIP with the MTU rule) and sent on the
// interface the route to their next hop leaves by, with link addresses from
// the namespace's neighbour table (the kernel resolves on demand).
//
// Only traffic to the virtual services and the replies of masqueraded
// connections are the engine's: the director's own stack still answers ARP
// and talks on its own addresses. The kernel never handles VIP traffic
// itself (the lab drops it in nft netdev ingress, after the packet taps) and
// does not forward (ip_forward=0), so nothing is answered or forwarded twice.
//
// One goroutine owns the packet path; the core is shared with the control
// path (ipvsadm) and a clock ticker through one mutex, taken once per batch.
// The core is single-threaded by design and its schedulers see every new
// connection in arrival order, as the kernel's do.
package engine

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/lvslab/lvslab/dataplane"
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
	// Profile is the kernel bookkeeping profile of the core.
	Profile scheduler.Profile
	// Tick is how often the core's clock advances without traffic
	// (connection expiry, the rate estimator); 1 s when zero.
	Tick time.Duration
	// VIPs, if set, is told the virtual addresses whenever the set changes
	// (the agent keeps the kernel's drop set in step with it).
	VIPs func(added, removed []netip.Addr)
}

// Counters are the engine's own counters (the core keeps IPVS's).
type Counters struct {
	Frames     uint64 // frames received
	Reasons    parse.Counters
	In, Out    uint64 // packets forwarded to real servers, replies to clients
	ICMPIn     uint64 // related ICMP errors relayed towards real servers
	ICMPOut    uint64 // related ICMP errors relayed towards clients
	Replies    uint64 // ICMP errors the director sent (port unreachable, frag needed, time exceeded)
	Segmented  uint64 // GSO packets split for a tunnel
	Dropped    uint64 // VIP packets the core dropped or did not take
	NoRoute    uint64 // packets without a route or a resolved next hop
	Unsendable uint64 // packets a transmitter refused (fragmentation, UDP GSO in a tunnel)
	Socket     []packetio.Stats
}

// Engine is a running director.
type Engine struct {
	cfg    Config
	mu     sync.Mutex // guards everything below, and the core
	core   *dataplane.Director
	ctl    *dataplane.Control
	vips   map[netip.Addr]bool
	hops   *nexthops
	ifs    []*iface
	cnt    Counters
	ipID   uint16
	poller *packetio.Poller
	stop   chan struct{}
	wg     sync.WaitGroup
	err    error // the packet loop's, after it ends
}

// iface is one interface the director forwards on.
type iface struct {
	index int
	name  string
	mac   header.MAC
	mtu   int
	sock  *packetio.AFPacket
	out   []packetio.Packet
}

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
	now := time.Now()
	e := &Engine{cfg: cfg, core: dataplane.New(cfg.Profile, now), vips: map[netip.Addr]bool{}, stop: make(chan struct{})}
	e.ctl = e.core.Control(time.Now)
	var err error
	if e.hops, err = newNexthops(); err != nil {
		return nil, err
	}
	if err := e.open(); err != nil {
		e.closeSockets()
		e.hops.close()
		return nil, err
	}
	fds := make([]int, len(e.ifs))
	for i, ifc := range e.ifs {
		fds[i] = ifc.sock.Fd()
	}
	if e.poller, err = packetio.NewPoller(fds...); err != nil {
		e.closeSockets()
		e.hops.close()
		return nil, err
	}
	e.wg.Add(2)
	go func() {
		defer e.wg.Done()
		runtime.LockOSThread()
		e.err = e.loop()
	}()
	go func() {
		defer e.wg.Done()
		e.tick()
	}()
	return e, nil
}

// open opens a socket on every interface the engine forwards on.
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
		s, err := packetio.Open(ni.Index, e.cfg.Batch, packetio.Config{Vnet: true, QdiscBypass: true, BufferBytes: 4 << 20})
		if err != nil {
			return fmt.Errorf("engine: interface %s: %w", name, err)
		}
		ifc := &iface{index: ni.Index, name: name, mtu: ni.MTU, sock: s, out: make([]packetio.Packet, 0, e.cfg.Batch)}
		copy(ifc.mac[:], ni.HardwareAddr)
		e.ifs = append(e.ifs, ifc)
	}
	return nil
}

func (e *Engine) closeSockets() {
	for _, ifc := range e.ifs {
		ifc.sock.Close()
	}
}

// Close stops forwarding and releases the sockets.
func (e *Engine) Close() error {
	close(e.stop)
	e.poller.Stop()
	e.wg.Wait()
	e.poller.Close()
	e.closeSockets()
	e.hops.close()
	if errors.Is(e.err, packetio.ErrStopped) {
		return nil
	}
	return e.err
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
	added, removed, dests := e.syncServices(time.Now())
	e.mu.Unlock()
	if e.cfg.VIPs != nil && (len(added) > 0 || len(removed) > 0) {
		e.cfg.VIPs(added, removed)
	}
	e.hops.resolve(dests)
	return code
}

// syncServices recomputes the virtual addresses after a control change and
// returns what changed and every destination address (to resolve early).
func (e *Engine) syncServices(now time.Time) (added, removed, dests []netip.Addr) {
	vips := map[netip.Addr]bool{}
	for _, s := range e.core.Services(now) {
		if s.Config.Key.FWMark == 0 {
			vips[s.Config.Key.Addr] = true
		}
		for _, d := range s.Dests {
			dests = append(dests, d.Config.Addr)
		}
	}
	for a := range vips {
		if !e.vips[a] {
			added = append(added, a)
		}
	}
	for a := range e.vips {
		if !vips[a] {
			removed = append(removed, a)
		}
	}
	e.vips = vips
	return added, removed, dests
}

// Counters returns a copy of the engine's counters.
func (e *Engine) Counters() Counters {
	e.mu.Lock()
	defer e.mu.Unlock()
	c := e.cnt
	c.Socket = make([]packetio.Stats, len(e.ifs))
	for i, ifc := range e.ifs {
		c.Socket[i] = ifc.sock.Stats
	}
	return c
}
