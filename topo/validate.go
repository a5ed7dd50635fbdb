package topo

import (
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strings"
)

// Problem is one thing wrong with a lab. Path locates it in the lab value
// with the scenario file's key names ("nodes[3].interfaces[0].address"), so a
// parser can turn it into file:line:col; Object names what is wrong in the
// user's words (`node "rs4"`).
type Problem struct {
	Path   string
	Object string
	Msg    string
}

func (p Problem) Error() string { return p.Object + ": " + p.Msg }

// Problems is every problem found at once, one per line.
type Problems []Problem

func (ps Problems) Error() string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.Error()
	}
	return strings.Join(s, "\n")
}

// nameRE is what a node or network name may be: it becomes part of file
// names in the run folder and of log lines, so keep it plain.
var nameRE = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,31}$`)

var protocols = []string{"tcp", "udp", "sctp"}

// Validate checks the lab and returns every problem (as Problems), or nil.
func (l *Lab) Validate() error {
	var ps Problems
	add := func(path, object, format string, args ...any) {
		ps = append(ps, Problem{Path: path, Object: object, Msg: fmt.Sprintf(format, args...)})
	}
	if l.Name == "" {
		add("name", "lab", "has no name")
	}

	nets := map[string]int{}
	for i, n := range l.Networks {
		obj, path := fmt.Sprintf("network %q", n.Name), fmt.Sprintf("networks[%d]", i)
		switch _, dup := nets[n.Name]; {
		case !nameRE.MatchString(n.Name):
			add(path+".name", obj, "name must be lower-case letters, digits, - or _, starting with a letter, at most 32 long")
		case dup:
			add(path+".name", obj, "is declared twice")
		}
		nets[n.Name] = i
		switch {
		case !n.Subnet.IsValid() || !n.Subnet.Addr().Is4():
			add(path+".subnet", obj, "needs an IPv4 subnet like 10.1.1.0/24")
		case n.Subnet.Masked() != n.Subnet:
			add(path+".subnet", obj, "subnet %s has host bits set (did you mean %s?)", n.Subnet, n.Subnet.Masked())
		case n.Subnet.Bits() > 30:
			add(path+".subnet", obj, "subnet %s leaves no room for hosts (at most /30)", n.Subnet)
		}
		if n.MTU != 0 && (n.MTU < 68 || n.MTU > 65535) {
			add(path+".mtu", obj, "mtu %d is outside 68–65535", n.MTU)
		}
		for j := range i {
			o := l.Networks[j]
			if n.Subnet.IsValid() && o.Subnet.IsValid() && n.Subnet.Overlaps(o.Subnet) {
				add(path+".subnet", obj, "subnet %s overlaps network %q (%s)", n.Subnet, o.Name, o.Subnet)
			}
		}
	}

	owner := map[netip.Addr]string{} // address → node that holds it
	nodes := map[string]int{}
	for i := range l.Nodes {
		n := &l.Nodes[i]
		obj, path := fmt.Sprintf("node %q", n.Name), fmt.Sprintf("nodes[%d]", i)
		switch _, dup := nodes[n.Name]; {
		case !nameRE.MatchString(n.Name):
			add(path+".name", obj, "name must be lower-case letters, digits, - or _, starting with a letter, at most 32 long")
		case dup:
			add(path+".name", obj, "is declared twice")
		}
		nodes[n.Name] = i
		if !slices.Contains(Roles, n.Role) {
			add(path+".role", obj, "role %q is not one of client, director, realserver, router", n.Role)
		}
		if len(n.Interfaces) == 0 {
			add(path+".interfaces", obj, "has no interfaces")
		}
		seen := map[string]bool{}
		for j, ifc := range n.Interfaces {
			ipath := fmt.Sprintf("%s.interfaces[%d]", path, j)
			nw := l.Network(ifc.Network)
			if nw == nil {
				add(ipath+".network", obj, "network %q is not declared", ifc.Network)
				continue
			}
			if seen[ifc.Network] {
				add(ipath+".network", obj, "has two interfaces on network %q", ifc.Network)
			}
			seen[ifc.Network] = true
			if len(ifc.Addresses) == 0 {
				add(ipath+".address", obj, "interface on %q has no address", ifc.Network)
			}
			for k, a := range ifc.Addresses {
				apath := ipath + ".address"
				if k > 0 {
					apath = ipath
				}
				if !nw.Subnet.Contains(a.Addr()) || a.Bits() != nw.Subnet.Bits() {
					add(apath, obj, "address %s is not in network %s (%s)", a.Addr(), nw.Name, nw.Subnet)
					continue
				}
				if a.Addr() == nw.Subnet.Addr() || a.Addr() == lastAddr(nw.Subnet) {
					add(apath, obj, "address %s is the network or broadcast address of %s (%s)", a.Addr(), nw.Name, nw.Subnet)
				}
				if slices.Contains(n.DropVIPs, a.Addr()) {
					continue // a director's VIP; several directors may hold it
				}
				if other, dup := owner[a.Addr()]; dup {
					add(apath, obj, "address %s is already used by node %q", a.Addr(), other)
				}
				owner[a.Addr()] = n.Name
			}
		}
		for j, r := range n.Routes {
			rpath := fmt.Sprintf("%s.routes[%d]", path, j)
			if !r.To.IsValid() || !r.To.Addr().Is4() {
				add(rpath+".to", obj, "route needs an IPv4 destination")
			}
			if !l.onLink(n, r.Via) {
				add(rpath+".via", obj, "gateway %s is not on any of the node's networks", r.Via)
			}
		}
		for _, k := range sortedKeys(n.Sysctls) {
			if !sysctlRE.MatchString(k) {
				add(path+".sysctls", obj, "sysctl %q is not a dotted name under net.", k)
			}
		}
	}

	directors := 0
	for _, n := range l.Nodes {
		if n.Role == Director {
			directors++
		}
	}
	svcs := map[string]int{}
	for i := range l.Services {
		s := &l.Services[i]
		path := fmt.Sprintf("services[%d]", i)
		obj := "service " + s.Key()
		switch {
		case s.FWMark == 0 && !s.VIP.Is4():
			add(path+".vip", obj, "needs an IPv4 VIP (or a fwmark)")
		case s.FWMark == 0 && !slices.Contains(protocols, s.Protocol):
			add(path+".protocol", obj, "protocol %q is not one of tcp, udp, sctp", s.Protocol)
		case s.FWMark != 0 && s.Protocol != "":
			add(path+".protocol", obj, "a fwmark service has no protocol (the mark selects the packets)")
		}
		if j, dup := svcs[s.Key()]; dup {
			add(path, obj, "is declared twice (also services[%d])", j)
		}
		svcs[s.Key()] = i
		if s.VIP.IsValid() {
			if who, taken := owner[s.VIP]; taken && l.Node(who).Role != Director {
				add(path+".vip", obj, "VIP %s is node %q's own address", s.VIP, who)
			}
		}
		if directors == 0 {
			add(path, obj, "the lab has no director node")
		}
		dests := map[string]bool{}
		for j, d := range s.Dests {
			dpath := fmt.Sprintf("%s.realservers[%d]", path, j)
			n := l.Node(d.Node)
			switch {
			case n == nil:
				add(dpath+".node", obj, "real server %q is not a node", d.Node)
			case n.Role != RealServer:
				add(dpath+".node", obj, "node %q is a %s, not a realserver", d.Node, n.Role)
			}
			key := fmt.Sprintf("%s:%d", d.Node, d.Port)
			if dests[key] {
				add(dpath, obj, "real server %s is listed twice", key)
			}
			dests[key] = true
			if !slices.Contains(Forwards, d.Forward) {
				add(dpath+".forward", obj, "forward %q is not one of nat, dr, tun", d.Forward)
			}
			if d.Weight < 0 || d.Weight > 65535 {
				add(dpath+".weight", obj, "weight %d is outside 0–65535", d.Weight)
			}
		}
	}
	if len(ps) == 0 {
		return nil
	}
	return ps
}

var sysctlRE = regexp.MustCompile(`^net(\.[A-Za-z0-9_-]+)+$`)

// onLink reports whether gw is on one of n's networks.
func (l *Lab) onLink(n *Node, gw netip.Addr) bool {
	for _, ifc := range n.Interfaces {
		if nw := l.Network(ifc.Network); nw != nil && nw.Subnet.Contains(gw) {
			return true
		}
	}
	return false
}

// lastAddr is the broadcast address of an IPv4 prefix.
func lastAddr(p netip.Prefix) netip.Addr {
	a := p.Masked().Addr().As4()
	host := uint32(1)<<(32-p.Bits()) - 1
	v := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])
	v |= host
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}
