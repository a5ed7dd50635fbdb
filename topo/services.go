package topo

import (
	"fmt"
	"net/netip"
	"slices"
)

// Sysctl keys the per-mode setup writes.
const (
	sysIPForward   = "net.ipv4.ip_forward"
	sysArpIgnore   = "net.ipv4.conf.all.arp_ignore"
	sysArpAnnounce = "net.ipv4.conf.all.arp_announce"
	sysRPFilterAll = "net.ipv4.conf.all.rp_filter"
	sysRPFilterDef = "net.ipv4.conf.default.rp_filter"
)

// ApplyServices derives what each node needs from the lab's roles and
// services, the way an LVS operator would set up the machines:
//
//   - routers forward (ip_forward=1);
//   - directors hold every VIP (on the interface whose network contains it,
//     else on lo), keep ip_forward=0 and drop inbound VIP traffic in the
//     kernel, because the userspace dataplane forwards;
//   - NAT real servers route their default through a director's address on
//     a network they share;
//   - DR real servers hold the VIP on lo and neither answer nor announce ARP
//     for it (arp_ignore=1, arp_announce=2), on a director's segment;
//   - TUN real servers decapsulate IPIP, hold the VIP on lo, do not ARP for it
//     and accept packets whose source routes elsewhere (rp_filter=0).
//
// A sysctl or default route the operator set is kept. ApplyServices is
// idempotent; it returns Problems for setups that cannot work.
func (l *Lab) ApplyServices() error {
	var ps Problems
	for i := range l.Nodes {
		n := &l.Nodes[i]
		switch n.Role {
		case Router:
			setDefault(n, sysIPForward, "1")
		case Director:
			setDefault(n, sysIPForward, "0")
		}
	}
	for i := range l.Services {
		s := &l.Services[i]
		vips := s.Addrs()
		for j := range l.Nodes {
			if n := &l.Nodes[j]; n.Role == Director {
				for _, vip := range vips {
					l.addDirectorVIP(n, vip)
				}
			}
		}
		for j, d := range s.Dests {
			n := l.Node(d.Node)
			if n == nil {
				continue // Validate reports it
			}
			problem := func(format string, args ...any) {
				ps = append(ps, Problem{
					Path:   fmt.Sprintf("services[%d].realservers[%d]", i, j),
					Object: fmt.Sprintf("real server %q", d.Node),
					Msg:    fmt.Sprintf(format, args...),
				})
			}
			gw, shared := l.directorOnLink(n)
			switch d.Forward {
			case NAT:
				if !shared {
					problem("NAT needs a network shared with a director (its default route goes back through the director)")
					continue
				}
				if !hasDefaultRoute(n) {
					n.Routes = append(n.Routes, Route{To: netip.MustParsePrefix("0.0.0.0/0"), Via: gw})
				}
			case DR:
				if !shared {
					problem("DR needs the director on the same segment (the director rewrites only the MAC address)")
					continue
				}
				for _, vip := range vips {
					l.addLocalVIP(n, vip)
				}
				setDefault(n, sysArpIgnore, "1")
				setDefault(n, sysArpAnnounce, "2")
			case TUN:
				for _, vip := range vips {
					l.addLocalVIP(n, vip)
					if !slices.Contains(n.Decap, vip) {
						n.Decap = append(n.Decap, vip)
					}
				}
				setDefault(n, sysArpIgnore, "1")
				setDefault(n, sysArpAnnounce, "2")
				setDefault(n, sysRPFilterAll, "0")
				setDefault(n, sysRPFilterDef, "0")
			}
		}
	}
	if len(ps) == 0 {
		return nil
	}
	return ps
}

// addDirectorVIP puts vip on the director's interface whose network contains
// it (so the director answers ARP for it, as in the classic setups), or on lo.
func (l *Lab) addDirectorVIP(n *Node, vip netip.Addr) {
	if !slices.Contains(n.DropVIPs, vip) {
		n.DropVIPs = append(n.DropVIPs, vip)
	}
	for k := range n.Interfaces {
		ifc := &n.Interfaces[k]
		nw := l.Network(ifc.Network)
		if nw == nil || !nw.Subnet.Contains(vip) {
			continue
		}
		p := netip.PrefixFrom(vip, nw.Subnet.Bits())
		if !slices.Contains(ifc.Addresses, p) {
			ifc.Addresses = append(ifc.Addresses, p)
		}
		return
	}
	l.addLocalVIP(n, vip)
}

// addLocalVIP puts vip on lo as a host address.
func (l *Lab) addLocalVIP(n *Node, vip netip.Addr) {
	if !vip.IsValid() {
		return
	}
	p := netip.PrefixFrom(vip, 32)
	if !slices.Contains(n.Loopback, p) {
		n.Loopback = append(n.Loopback, p)
	}
}

// directorOnLink returns a director's address on a network n is also on.
func (l *Lab) directorOnLink(n *Node) (netip.Addr, bool) {
	for _, ifc := range n.Interfaces {
		for _, d := range l.Nodes {
			if d.Role != Director {
				continue
			}
			if a, ok := d.Address(ifc.Network); ok {
				return a, true
			}
		}
	}
	return netip.Addr{}, false
}

func hasDefaultRoute(n *Node) bool {
	for _, r := range n.Routes {
		if r.To.Bits() == 0 {
			return true
		}
	}
	return false
}

func setDefault(n *Node, key, value string) {
	if n.Sysctls == nil {
		n.Sysctls = map[string]string{}
	}
	if _, set := n.Sysctls[key]; !set {
		n.Sysctls[key] = value
	}
}
