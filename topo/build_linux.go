package topo

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/containernetworking/plugins/pkg/utils/sysctl"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Limits that keep every name inside IFNAMSIZ (15): a fabric-side veth is
// the lab ID (8), the node index in hex (≤ 4), "." and the interface index.
const (
	MaxNodes          = 0xffff
	MaxNodeInterfaces = 10
)

// Options tune Build.
type Options struct {
	// RunDir holds the lab's run folder; RunDir() when empty.
	RunDir string
	// Pin bind-mounts every namespace under the run folder so the lab
	// outlives the building process and other processes reach its nodes by
	// name (lvslab up). Unpinned labs live as long as the Instance.
	Pin bool
	// Features decides the fallbacks; Probe() when nil.
	Features *Features
	// Executable is re-executed for agents; os.Executable() when empty.
	Executable string
	// Workers build nodes in parallel; GOMAXPROCS when 0.
	Workers int
	// Detached agents survive the building process (lvslab up); otherwise
	// they die with it.
	Detached bool
}

// Instance is a lab built on this machine. The runner holds its namespaces
// by file descriptor; Destroy removes everything it owns.
type Instance struct {
	ID       string
	Lab      *Lab
	Features Features
	Dir      string // the lab's run folder

	opt      Options
	reg      *registry
	fabric   ns.NetNS
	nodes    []ns.NetNS // by index in Lab.Nodes
	pins     []string   // every bind mount made, fabric last
	bridges  map[string]int
	veths    atomic.Int64 // fabric-side veth ends created
	mu       sync.Mutex
	agents   []*Agent
	destroy  sync.Once
	destroyE error
}

// Build validates lab and builds it: a fabric namespace holding one bridge
// per network, a namespace per node wired to the bridges by veth pairs, then
// addresses, routes, sysctls, the per-mode setup, the kernel's VIP drop on
// directors and the decapsulators of TUN real servers. Nothing is ever
// created in the caller's namespace. On error everything built so far is
// destroyed before Build returns.
func Build(ctx context.Context, lab *Lab, opt Options) (*Instance, error) {
	if err := lab.Validate(); err != nil {
		return nil, err
	}
	if len(lab.Nodes) > MaxNodes {
		return nil, fmt.Errorf("lab %s: %d nodes, at most %d", lab.Name, len(lab.Nodes), MaxNodes)
	}
	for _, n := range lab.Nodes {
		if len(n.Interfaces) > MaxNodeInterfaces {
			return nil, fmt.Errorf("node %q: %d interfaces, at most %d", n.Name, len(n.Interfaces), MaxNodeInterfaces)
		}
	}
	if opt.RunDir == "" {
		opt.RunDir = RunDir()
	}
	if opt.Features == nil {
		f := Probe()
		opt.Features = &f
	}
	if opt.Workers <= 0 {
		opt.Workers = runtime.GOMAXPROCS(0)
	}
	reg, id, err := createRegistry(opt.RunDir)
	if err != nil {
		return nil, fmt.Errorf("run folder: %w", err)
	}
	in := &Instance{
		ID: id, Lab: lab, Features: *opt.Features, Dir: reg.dir,
		opt: opt, reg: reg, nodes: make([]ns.NetNS, len(lab.Nodes)), bridges: map[string]int{},
	}
	start, _ := processStart(os.Getpid())
	if err := reg.add(record{Op: "lab", ID: id, Name: lab.Name, Runner: os.Getpid(), RunnerStart: start, Created: time.Now()}); err != nil {
		in.Destroy()
		return nil, err
	}
	if err := in.build(ctx); err != nil {
		if derr := in.Destroy(); derr != nil {
			err = fmt.Errorf("%w (and tearing down: %v)", err, derr)
		}
		return nil, fmt.Errorf("lab %s: %w", lab.Name, err)
	}
	if err := reg.add(record{Op: "state", State: "up"}); err != nil {
		in.Destroy()
		return nil, err
	}
	return in, nil
}

func (in *Instance) build(ctx context.Context) error {
	if err := in.buildFabric(); err != nil {
		return fmt.Errorf("fabric: %w", err)
	}
	jobs := make(chan int)
	errc := make(chan error, in.opt.Workers)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	for range min(in.opt.Workers, len(in.Lab.Nodes)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := in.worker(jobs); err != nil {
				errc <- err
				cancel()
			}
		}()
	}
feed:
	for i := range in.Lab.Nodes {
		select {
		case jobs <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(jobs)
	wg.Wait()
	close(errc)
	if err := <-errc; err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := in.waitForwarding(ctx); err != nil {
		return err
	}
	return in.startDecapsulators()
}

// LinkUpTimeout bounds the wait for every link to carry frames.
var LinkUpTimeout = 30 * time.Second

// waitForwarding returns once every veth end in the fabric carries frames,
// so the first packet a test or a user sends is not lost to a link the
// kernel has not activated yet (see readyLinks). The node ends need no
// look of their own: the link watcher activates devices in the order their
// events came, and a node end's come first (veth_newlink turns the peer's
// carrier off first; veth_open turns its own carrier on before its peer's),
// so a fabric end that is up has a node end that is up.
func (in *Instance) waitForwarding(ctx context.Context) error {
	v, err := newVethMaker(in.fabric)
	if err != nil {
		return err
	}
	defer v.close()
	want := int(in.veths.Load())
	deadline := time.Now().Add(LinkUpTimeout)
	// A dump of a thousand links costs the kernel a millisecond or two:
	// poll soon, then back off.
	pause := time.Millisecond
	for {
		n, err := v.readyLinks(in.ID)
		if err != nil {
			return fmt.Errorf("fabric: %w", err)
		}
		if n >= want {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("fabric: %d of %d links up after %v", n, want, LinkUpTimeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(pause):
			pause = min(2*pause, 50*time.Millisecond)
		}
	}
}

// startDecapsulators starts the userspace decapsulator of every TUN real
// server, several at a time: an agent spends most of its start-up in exec.
func (in *Instance) startDecapsulators() error {
	if in.Features.IPIP {
		return nil
	}
	sem := make(chan struct{}, 4*in.opt.Workers)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	for _, n := range in.Lab.Nodes {
		if len(n.Decap) == 0 {
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			if _, err := in.StartAgent(n.Name, "ipipd", "--tun", DecapTun); err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("node %q: userspace IPIP decapsulator: %w", n.Name, err))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// DecapTun is the TUN device lvslab's userspace decapsulator delivers inner
// packets through, in a TUN real server without the kernel ipip driver.
const DecapTun = "ipip0"

// newNetNS moves the calling (locked) thread into a new network namespace
// and records it before anything else can hold it.
func (in *Instance) newNetNS(node string) (ns.NetNS, error) {
	if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
		return nil, fmt.Errorf("new network namespace: %w", err)
	}
	h, err := ns.GetNS("/proc/thread-self/ns/net")
	if err != nil {
		return nil, err
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(h.Fd()), &st); err != nil {
		h.Close()
		return nil, err
	}
	cookie, err := threadNetNSCookie()
	if err != nil {
		h.Close()
		return nil, err
	}
	if err := in.reg.add(record{Op: "ns", Node: node, Ino: st.Ino, Cookie: cookie, FD: int(h.Fd())}); err != nil {
		h.Close()
		return nil, err
	}
	if in.opt.Pin {
		if err := in.pin(node); err != nil {
			h.Close()
			return nil, err
		}
	}
	// No IPv6 on lab links: no DAD, router solicitations or MLD reports in
	// the captures of an IPv4 lab, and a faster build. lo keeps ::1.
	if _, err := os.Stat("/proc/sys/net/ipv6"); err == nil {
		if _, err := sysctl.Sysctl("net.ipv6.conf.default.disable_ipv6", "1"); err != nil {
			h.Close()
			return nil, err
		}
	}
	return h, nil
}

// pin bind-mounts the calling thread's namespace at netns/NODE in the run
// folder; the path is recorded first so a crash between the two leaves a
// record, never an unknown mount.
func (in *Instance) pin(node string) error {
	dir := filepath.Join(in.Dir, "netns")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	path := filepath.Join(dir, node)
	if err := in.reg.add(record{Op: "pin", Node: node, Path: path}); err != nil {
		return err
	}
	in.mu.Lock()
	in.pins = append(in.pins, path)
	in.mu.Unlock()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_RDONLY, 0o600)
	if err != nil {
		return err
	}
	f.Close()
	if err := unix.Mount("/proc/thread-self/ns/net", path, "none", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("pin %s: %w", path, err)
	}
	return nil
}

// onLockedThread runs fn on a locked thread that may move into other network
// namespaces (unshare, setns); the thread returns to the caller's namespace
// afterwards, or dies with its goroutine if it cannot.
func onLockedThread(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		home, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			errc <- err
			return
		}
		defer home.Close()
		err = fn()
		if unix.Setns(int(home.Fd()), unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		}
		errc <- err
	}()
	return <-errc
}

func (in *Instance) buildFabric() error {
	return onLockedThread(func() error {
		h, err := in.newNetNS(FabricNode)
		if err != nil {
			return err
		}
		in.fabric = h
		// Bridged frames must not cross the fabric's (empty) iptables.
		for _, k := range []string{"net.bridge.bridge-nf-call-iptables", "net.bridge.bridge-nf-call-arptables"} {
			if _, err := os.Stat("/proc/sys/" + dotsToSlashes(k)); err == nil {
				if _, err := sysctl.Sysctl(k, "0"); err != nil {
					return err
				}
			}
		}
		nh, err := netlink.NewHandle(unix.NETLINK_ROUTE)
		if err != nil {
			return err
		}
		defer nh.Close()
		for i, nw := range in.Lab.Networks {
			attrs := netlink.NewLinkAttrs()
			attrs.Name = fmt.Sprintf("%sb%d", in.ID, i)
			attrs.MTU = nw.MTUOf()
			attrs.Flags = net.FlagUp
			br := &netlink.Bridge{LinkAttrs: attrs}
			if err := nh.LinkAdd(br); err != nil {
				return fmt.Errorf("network %q: bridge: %w", nw.Name, err)
			}
			in.bridges[nw.Name] = br.Index
		}
		return nil
	})
}

// worker builds nodes on one locked thread: each node's namespace is made by
// unshare on this thread, so its netlink socket and sysctl writes need no
// namespace switch.
func (in *Instance) worker(jobs <-chan int) error {
	var werr error
	err := onLockedThread(func() error {
		fab, err := newVethMaker(in.fabric)
		if err != nil {
			return err
		}
		defer fab.close()
		for i := range jobs {
			if werr != nil {
				continue // drain
			}
			if err := in.buildNode(i, fab); err != nil {
				werr = fmt.Errorf("node %q: %w", in.Lab.Nodes[i].Name, err)
			}
		}
		return werr
	})
	return err
}

func (in *Instance) buildNode(i int, fab *vethMaker) error {
	n := &in.Lab.Nodes[i]
	h, err := in.newNetNS(n.Name)
	if err != nil {
		return err
	}
	in.nodes[i] = h
	nh, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return err
	}
	defer nh.Close()
	lo := &netlink.Device{LinkAttrs: netlink.LinkAttrs{Index: 1, Name: "lo"}}
	if err := nh.LinkSetUp(lo); err != nil {
		return fmt.Errorf("lo up: %w", err)
	}
	var ifnames []string
	for j, ifc := range n.Interfaces {
		nw := in.Lab.Network(ifc.Network)
		idx := nodeIfIndex(j)
		if err := fab.addVeth(in.fabricIfName(i, j), fabricIfIndex(i, j), in.bridges[nw.Name], nw.MTUOf(), IfName(j), idx, int(h.Fd())); err != nil {
			return fmt.Errorf("%s: veth into network %q: %w", IfName(j), nw.Name, err)
		}
		in.veths.Add(1)
		link := &netlink.Device{LinkAttrs: netlink.LinkAttrs{Index: idx, Name: IfName(j)}}
		if err := nh.LinkSetUp(link); err != nil {
			return fmt.Errorf("%s up: %w", IfName(j), err)
		}
		for _, a := range ifc.Addresses {
			if err := nh.AddrAdd(link, &netlink.Addr{IPNet: ipNet(a)}); err != nil {
				return fmt.Errorf("%s: address %s: %w", IfName(j), a, err)
			}
		}
		ifnames = append(ifnames, IfName(j))
	}
	for _, a := range n.Loopback {
		if err := nh.AddrAdd(lo, &netlink.Addr{IPNet: ipNet(a)}); err != nil {
			return fmt.Errorf("lo: address %s: %w", a, err)
		}
	}
	for _, r := range n.Routes {
		if err := nh.RouteAdd(&netlink.Route{Dst: ipNet(r.To), Gw: r.Via.AsSlice()}); err != nil {
			return fmt.Errorf("route %s via %s: %w", r.To, r.Via, err)
		}
	}
	for _, k := range sortedKeys(n.Sysctls) {
		if _, err := sysctl.Sysctl(k, n.Sysctls[k]); err != nil {
			return fmt.Errorf("sysctl %s=%s: %w", k, n.Sysctls[k], err)
		}
	}
	if len(n.Decap) > 0 {
		if err := in.setupDecap(nh, int(h.Fd()), ifnames); err != nil {
			return fmt.Errorf("ipip: %w", err)
		}
	}
	if len(n.DropVIPs) > 0 {
		if !in.Features.NFTables {
			return errors.New("nftables is needed to keep the director's kernel off VIP traffic, and this kernel has none")
		}
		if err := dropInbound(int(h.Fd()), ifnames, false); err != nil {
			return fmt.Errorf("VIP drop: %w", err)
		}
	}
	return nil
}

// setupDecap readies a TUN real server for IPIP: the kernel's tunl0 where the
// ipip driver exists; otherwise a netfilter drop of IPIP after the packet
// taps (so the kernel does not answer "protocol unreachable") for the
// userspace decapsulator that Build starts once every node exists.
func (in *Instance) setupDecap(nh *netlink.Handle, nsfd int, ifnames []string) error {
	if in.Features.IPIP {
		tun := &netlink.Iptun{LinkAttrs: netlink.NewLinkAttrs()}
		tun.Name = "tunl0"
		link, err := nh.LinkByName("tunl0")
		if err != nil {
			if err := nh.LinkAdd(tun); err != nil {
				return err
			}
			link = tun
		}
		if _, err := sysctl.Sysctl("net.ipv4.conf.tunl0.rp_filter", "0"); err != nil {
			return err
		}
		return nh.LinkSetUp(link)
	}
	if !in.Features.NFTables {
		return errors.New("neither the ipip driver nor nftables (for the userspace decapsulator) is available")
	}
	return dropInbound(nsfd, ifnames, true)
}

// NetNS returns the namespace of node (FabricNode: the lab's fabric), for
// code that opens sockets or netlink handles in it. It stays owned by the
// Instance.
func (in *Instance) NetNS(node string) (ns.NetNS, error) {
	if node == FabricNode && in.fabric != nil {
		return in.fabric, nil
	}
	for i, n := range in.Lab.Nodes {
		if n.Name == node && in.nodes[i] != nil {
			return in.nodes[i], nil
		}
	}
	return nil, fmt.Errorf("lab %s has no node %q", in.Lab.Name, node)
}

// Do runs fn on a thread inside node's network namespace.
func (in *Instance) Do(node string, fn func() error) error {
	h, err := in.NetNS(node)
	if err != nil {
		return err
	}
	return h.Do(func(ns.NetNS) error { return fn() })
}

func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

func dotsToSlashes(k string) string {
	b := []byte(k)
	for i := range b {
		if b[i] == '.' {
			b[i] = '/'
		}
	}
	return string(b)
}
