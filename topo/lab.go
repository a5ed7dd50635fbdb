package topo

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"
)

// Role is what a node is in an LVS cluster.
type Role string

const (
	Client     Role = "client"
	Director   Role = "director"
	RealServer Role = "realserver"
	// Router forwards between its interfaces: the routed hop that puts a
	// TUN real server "in another country".
	Router Role = "router"
)

// Roles lists the valid roles in the order documentation shows them.
var Roles = []Role{Client, Director, RealServer, Router}

// Forward is an IPVS forwarding method (ipvsadm -m, -g, -i).
type Forward string

const (
	NAT Forward = "nat" // masquerading: the director rewrites addresses both ways
	DR  Forward = "dr"  // direct routing ("gatewaying"): MAC rewrite on one segment
	TUN Forward = "tun" // IP-in-IP tunneling to the real server
)

// Forwards lists the valid forwarding methods.
var Forwards = []Forward{NAT, DR, TUN}

// DefaultMTU is the MTU of a network that does not set one.
const DefaultMTU = 1500

// Lab is a whole topology. Field names follow the scenario YAML keys, so a
// Problem's path points into the file the lab came from.
type Lab struct {
	Name     string
	Networks []Network
	Nodes    []Node
	// Services are the virtual services the lab is set up for;
	// ApplyServices derives each node's per-mode setup from them.
	Services []Service
}

// Network is one L2 segment: a Linux bridge inside the lab.
type Network struct {
	Name   string
	Subnet netip.Prefix
	MTU    int // 0 means DefaultMTU
}

// Node is one machine of the lab: a network namespace.
type Node struct {
	Name       string
	Role       Role
	Interfaces []Interface
	Routes     []Route
	// Sysctls are written in the node's namespace, in key order, after its
	// interfaces exist. Keys are dotted (net.ipv4.conf.all.arp_ignore).
	Sysctls map[string]string
	// Loopback holds extra addresses on lo: the VIP of a DR real server.
	Loopback []netip.Prefix
	// Decap lists the addresses this node accepts as the inner destination
	// of IPIP packets (the VIPs of a TUN real server); empty means no tunnel.
	Decap []netip.Addr
	// DropVIPs are the director's virtual addresses. A userspace dataplane
	// owns the traffic of their virtual services: the kernel drops exactly
	// that (AddDropServices) and answers the rest (ping, other ports) itself.
	DropVIPs []netip.Addr
}

// Interface attaches a node to a network. Addresses[0] is the primary
// address; further entries are secondaries (a client's source addresses,
// a director's VIP).
type Interface struct {
	Network   string
	Addresses []netip.Prefix
}

// Route is a static route in a node.
type Route struct {
	To  netip.Prefix // 0.0.0.0/0 for the default route
	Via netip.Addr
}

// Service is a virtual service: what the director balances and the real
// servers it sends to. Only what the lab's wiring depends on lives here.
type Service struct {
	VIP      netip.Addr // may be invalid for a firewall-mark service without an address
	Port     uint16
	Protocol string // tcp | udp | sctp; empty for a firewall-mark service
	FWMark   uint32
	// MarkVIPs are a firewall-mark service's further addresses (its marking
	// rule covers them all): wired on the director and the real servers
	// as VIP is.
	MarkVIPs []netip.Addr
	Dests    []Dest
}

// Addrs are the addresses the service is reached at: VIP, if it has one,
// and MarkVIPs.
func (s *Service) Addrs() []netip.Addr {
	if !s.VIP.IsValid() {
		return s.MarkVIPs
	}
	return append([]netip.Addr{s.VIP}, s.MarkVIPs...)
}

// Dest is a real server of a virtual service (a destination in IPVS terms).
type Dest struct {
	Node    string
	Port    uint16
	Weight  int
	Forward Forward
}

// Node returns the node called name, or nil.
func (l *Lab) Node(name string) *Node {
	for i := range l.Nodes {
		if l.Nodes[i].Name == name {
			return &l.Nodes[i]
		}
	}
	return nil
}

// Network returns the network called name, or nil.
func (l *Lab) Network(name string) *Network {
	for i := range l.Networks {
		if l.Networks[i].Name == name {
			return &l.Networks[i]
		}
	}
	return nil
}

// MTUOf returns the network's MTU, DefaultMTU when unset.
func (n *Network) MTUOf() int {
	if n.MTU == 0 {
		return DefaultMTU
	}
	return n.MTU
}

// Interface returns the node's interface on network, or nil.
func (n *Node) Interface(network string) *Interface {
	for i := range n.Interfaces {
		if n.Interfaces[i].Network == network {
			return &n.Interfaces[i]
		}
	}
	return nil
}

// Address returns the node's primary address on network.
func (n *Node) Address(network string) (netip.Addr, bool) {
	ifc := n.Interface(network)
	if ifc == nil || len(ifc.Addresses) == 0 {
		return netip.Addr{}, false
	}
	return ifc.Addresses[0].Addr(), true
}

// IfName is the name the node's i-th interface gets inside its namespace.
// Names mirror a real machine (eth0, eth1, …) because the namespace is the
// lab's own; objects outside it carry the lab prefix.
func IfName(i int) string { return fmt.Sprintf("eth%d", i) }

// String prints the lab the way an operator reads a topology: networks, then
// each node with its addresses, routes and settings. Output is stable.
func (l *Lab) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "lab %s\n", l.Name)
	for _, n := range l.Networks {
		fmt.Fprintf(&b, "  network %s %s mtu %d\n", n.Name, n.Subnet, n.MTUOf())
	}
	for _, n := range l.Nodes {
		fmt.Fprintf(&b, "  node %s (%s)\n", n.Name, n.Role)
		for i, ifc := range n.Interfaces {
			fmt.Fprintf(&b, "    %s %s %s\n", IfName(i), ifc.Network, joinPrefixes(ifc.Addresses))
		}
		if len(n.Loopback) > 0 {
			fmt.Fprintf(&b, "    lo %s\n", joinPrefixes(n.Loopback))
		}
		for _, r := range n.Routes {
			fmt.Fprintf(&b, "    route %s via %s\n", r.To, r.Via)
		}
		if len(n.Decap) > 0 {
			fmt.Fprintf(&b, "    ipip decap for %s\n", joinAddrs(n.Decap))
		}
		if len(n.DropVIPs) > 0 {
			fmt.Fprintf(&b, "    virtual addresses %s (the dataplane owns their services' traffic)\n", joinAddrs(n.DropVIPs))
		}
		for _, k := range sortedKeys(n.Sysctls) {
			fmt.Fprintf(&b, "    sysctl %s=%s\n", k, n.Sysctls[k])
		}
	}
	for _, s := range l.Services {
		fmt.Fprintf(&b, "  service %s\n", s.Key())
		for _, d := range s.Dests {
			fmt.Fprintf(&b, "    -> %s:%d %s weight %d\n", d.Node, d.Port, d.Forward, d.Weight)
		}
	}
	return b.String()
}

// Key names the service as ipvsadm lists it: "TCP 192.168.1.110:80" or "FWM 1".
func (s *Service) Key() string {
	if s.FWMark != 0 {
		return fmt.Sprintf("FWM %d", s.FWMark)
	}
	return fmt.Sprintf("%s %s", strings.ToUpper(s.Protocol), netip.AddrPortFrom(s.VIP, s.Port))
}

func joinPrefixes(ps []netip.Prefix) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, " ")
}

func joinAddrs(as []netip.Addr) string {
	s := make([]string, len(as))
	for i, a := range as {
		s[i] = a.String()
	}
	return strings.Join(s, " ")
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
