package engine

import (
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/lvslab/lvslab/dataplane/header"
)

// hop is where a packet to one address leaves: the interface, the link
// address of the next hop (the address itself on-link, else the gateway),
// the source address the route prefers (a tunnel's outer source) and the
// route's MTU (0: the interface's).
type hop struct {
	ifindex int
	mac     header.MAC
	src     netip.Addr
	mtu     int
}

// nexthops caches the namespace's routing and neighbour tables per
// destination address. A miss looks the address up in the kernel's tables
// at once; an unresolved neighbour is handed to the kernel to resolve
// (NTF_USE, as a packet of its own stack would) and the packet is dropped,
// as the kernel drops what overflows its small ARP queue. A ticker
// re-reads every cached entry, so a changed route or MAC is followed.
type nexthops struct {
	// fast serves misses on the packet path, slow refreshes and early
	// resolution: each reads the kernel's tables through its own netlink
	// socket (tests put a table of their own here).
	fast, slow finder
	// learner seeds the tables from a frame an on-link host sent (nil:
	// no learning).
	learner func(src netip.Addr, mac header.MAC, ifindex int) (hop, bool)
	closers []*netlink.Handle

	mu       sync.Mutex
	cache    map[netip.Addr]hop
	negative map[netip.Addr]time.Time // unresolved until then: no new lookup
	tried    map[netip.Addr]bool      // resolved early once already
}

// negativeTTL is how long an unresolved address is not looked up again.
const negativeTTL = 100 * time.Millisecond

// usableStates are the neighbour states whose link address may be used.
const usableStates = netlink.NUD_REACHABLE | netlink.NUD_STALE | netlink.NUD_DELAY | netlink.NUD_PROBE |
	netlink.NUD_PERMANENT | netlink.NUD_NOARP

// finder looks up the hop towards an address; with trigger, an unresolved
// next hop is given to the kernel to resolve.
type finder func(dst netip.Addr, trigger bool) (hop, bool)

func newNexthops() (*nexthops, error) {
	fast, err := netlink.NewHandle()
	if err != nil {
		return nil, err
	}
	slow, err := netlink.NewHandle()
	if err != nil {
		fast.Close()
		return nil, err
	}
	n := newCache(kernelFinder(fast), kernelFinder(slow))
	n.learner = func(src netip.Addr, mac header.MAC, ifindex int) (hop, bool) {
		return learn(fast, src, mac, ifindex)
	}
	n.closers = []*netlink.Handle{fast, slow}
	return n, nil
}

func newCache(fast, slow finder) *nexthops {
	return &nexthops{fast: fast, slow: slow, cache: map[netip.Addr]hop{}, negative: map[netip.Addr]time.Time{},
		tried: map[netip.Addr]bool{}}
}

func (n *nexthops) close() {
	for _, h := range n.closers {
		h.Close()
	}
}

// lookup returns the hop towards dst.
func (n *nexthops) lookup(dst netip.Addr, now time.Time) (hop, bool) {
	n.mu.Lock()
	h, ok := n.cache[dst]
	until, neg := n.negative[dst]
	n.mu.Unlock()
	if ok {
		return h, true
	}
	if neg && now.Before(until) {
		return hop{}, false
	}
	h, ok = n.fast(dst, true)
	n.mu.Lock()
	if ok {
		n.cache[dst] = h
		delete(n.negative, dst)
	} else {
		n.negative[dst] = now.Add(negativeTTL)
	}
	n.mu.Unlock()
	return h, ok
}

// learn takes the link address of a client from a frame it sent, when the
// client is on-link behind the interface the frame came in on. The
// director's kernel never talks to its clients (their traffic to a VIP is
// the dataplane's), so without this the first NAT reply to every new client
// address would be dropped while the kernel resolves it, and the client
// would wait a second for its SYN to be retransmitted. The kernel itself
// learns a neighbour from the ARP requests it receives; like those, the
// entry goes into its table as STALE, to be used at once and verified
// later.
func (n *nexthops) learn(src netip.Addr, mac header.MAC, ifindex int) {
	if n.learner == nil {
		return
	}
	n.mu.Lock()
	_, ok := n.cache[src]
	n.mu.Unlock()
	if ok {
		return
	}
	if h, ok := n.learner(src, mac, ifindex); ok {
		n.mu.Lock()
		n.cache[src] = h
		delete(n.negative, src)
		n.mu.Unlock()
	}
}

func learn(h *netlink.Handle, src netip.Addr, mac header.MAC, ifindex int) (hop, bool) {
	routes, err := h.RouteGet(net.IP(src.AsSlice()))
	if err != nil || len(routes) == 0 || len(routes[0].Gw) > 0 || routes[0].LinkIndex != ifindex {
		return hop{}, false // behind a gateway, or asymmetric: ask the kernel
	}
	r := routes[0]
	family := netlink.FAMILY_V4
	if src.Is6() {
		family = netlink.FAMILY_V6
	}
	// NeighAdd does not replace an entry the kernel already has.
	_ = h.NeighAdd(&netlink.Neigh{LinkIndex: ifindex, Family: family, IP: net.IP(src.AsSlice()),
		HardwareAddr: net.HardwareAddr(mac[:]), State: netlink.NUD_STALE})
	out := hop{ifindex: ifindex, mac: mac, mtu: r.MTU}
	if a, ok := netip.AddrFromSlice(r.Src); ok {
		out.src = a.Unmap()
	}
	return out, true
}

// kernelFinder reads the route to dst and its next hop's link address from
// the namespace's tables through h.
func kernelFinder(h *netlink.Handle) finder {
	return func(dst netip.Addr, trigger bool) (hop, bool) { return find(h, dst, trigger) }
}

func find(h *netlink.Handle, dst netip.Addr, trigger bool) (hop, bool) {
	routes, err := h.RouteGet(net.IP(dst.AsSlice()))
	if err != nil || len(routes) == 0 {
		return hop{}, false
	}
	r := routes[0]
	nh := dst
	if len(r.Gw) > 0 {
		if a, ok := netip.AddrFromSlice(r.Gw); ok {
			nh = a.Unmap()
		}
	}
	out := hop{ifindex: r.LinkIndex, mtu: r.MTU}
	if a, ok := netip.AddrFromSlice(r.Src); ok {
		out.src = a.Unmap()
	}
	family := netlink.FAMILY_V4
	if nh.Is6() {
		family = netlink.FAMILY_V6
	}
	neighs, err := h.NeighList(r.LinkIndex, family)
	if err != nil {
		return hop{}, false
	}
	for _, ne := range neighs {
		a, ok := netip.AddrFromSlice(ne.IP)
		if !ok || a.Unmap() != nh || len(ne.HardwareAddr) != 6 || ne.State&usableStates == 0 {
			continue
		}
		copy(out.mac[:], ne.HardwareAddr)
		return out, true
	}
	if trigger {
		h.NeighSet(&netlink.Neigh{LinkIndex: r.LinkIndex, Family: family, IP: net.IP(nh.AsSlice()), Flags: netlink.NTF_USE})
	}
	return hop{}, false
}

// resolve resolves addrs before traffic needs them (the destinations of
// the services), waiting up to a second for the kernel's answers. An
// address is waited for once: later it is resolved on demand.
func (n *nexthops) resolve(addrs []netip.Addr) {
	deadline := time.Now().Add(time.Second)
	for _, a := range addrs {
		n.mu.Lock()
		tried := n.tried[a]
		n.tried[a] = true
		n.mu.Unlock()
		if tried {
			continue
		}
		for {
			n.mu.Lock()
			_, ok := n.cache[a]
			n.mu.Unlock()
			if ok {
				break
			}
			h, ok := n.slow(a, true)
			if ok {
				n.mu.Lock()
				n.cache[a] = h
				delete(n.negative, a)
				n.mu.Unlock()
				break
			}
			if time.Now().After(deadline) {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}

// refresh re-reads every cached entry.
func (n *nexthops) refresh() {
	n.mu.Lock()
	addrs := make([]netip.Addr, 0, len(n.cache))
	for a := range n.cache {
		addrs = append(addrs, a)
	}
	n.mu.Unlock()
	for _, a := range addrs {
		h, ok := n.slow(a, true)
		n.mu.Lock()
		if ok {
			n.cache[a] = h
		} else {
			delete(n.cache, a)
		}
		n.mu.Unlock()
	}
}
