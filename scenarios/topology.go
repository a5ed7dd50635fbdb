package scenarios

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/lvslab/lvslab/scheduler"
	"github.com/lvslab/lvslab/topo"
)

// maxSourceAddresses bounds a client's source_addresses (each one is an
// address on an interface).
const maxSourceAddresses = 4096

// DefaultScheduler is what ipvsadm uses when -s is not given.
const DefaultScheduler = "wlc"

type labResult struct {
	lab  *topo.Lab
	errs Errors
}

// Lab returns the lab the scenario describes, with the per-mode setup
// derived from its services. Each call returns a fresh copy.
func (s *Scenario) Lab() *topo.Lab {
	if s.lab.lab == nil {
		return nil
	}
	l := *s.lab.lab
	l.Networks = slices.Clone(l.Networks)
	l.Services = slices.Clone(l.Services)
	l.Nodes = slices.Clone(l.Nodes)
	for i := range l.Nodes {
		n := &l.Nodes[i]
		n.Interfaces = slices.Clone(n.Interfaces)
		for j := range n.Interfaces {
			n.Interfaces[j].Addresses = slices.Clone(n.Interfaces[j].Addresses)
		}
		n.Routes = slices.Clone(n.Routes)
		n.Loopback = slices.Clone(n.Loopback)
		n.Decap = slices.Clone(n.Decap)
		n.DropVIPs = slices.Clone(n.DropVIPs)
		sys := make(map[string]string, len(n.Sysctls))
		for k, v := range n.Sysctls {
			sys[k] = v
		}
		n.Sysctls = sys
	}
	return &l
}

// translate turns the topology into a topo.Lab, collecting every problem
// with its position: first what cannot be parsed, then what the lab model
// rejects, then what the per-mode setup cannot satisfy.
func (s *Scenario) translate() labResult {
	var es Errors
	bad := func(path, object, format string, args ...any) {
		es = append(es, s.src.errorAt(path, object, fmt.Sprintf(format, args...)))
	}
	l := &topo.Lab{Name: s.Name}
	for i, n := range s.Networks {
		obj := fmt.Sprintf("network %q", n.Name)
		p, err := netip.ParsePrefix(n.Subnet)
		if err != nil {
			bad(fmt.Sprintf("networks[%d].subnet", i), obj, "subnet %q is not a prefix like 10.1.1.0/24", n.Subnet)
		}
		l.Networks = append(l.Networks, topo.Network{Name: n.Name, Subnet: p, MTU: n.MTU})
	}
	for i, n := range s.Nodes {
		obj, path := fmt.Sprintf("node %q", n.Name), fmt.Sprintf("nodes[%d]", i)
		tn := topo.Node{Name: n.Name, Role: topo.Role(n.Role), Sysctls: map[string]string{}}
		for k, v := range n.Sysctls {
			tn.Sysctls[k] = v
		}
		for j, ifc := range n.Interfaces {
			a, err := parseHostAddress(ifc.Address, l.Network(ifc.Network))
			if err != nil {
				bad(fmt.Sprintf("%s.interfaces[%d].address", path, j), obj, "%v", err)
			}
			tn.Interfaces = append(tn.Interfaces, topo.Interface{Network: ifc.Network, Addresses: []netip.Prefix{a}})
		}
		if n.SourceAddresses != "" {
			addrs, err := parseAddressList(n.SourceAddresses)
			if err != nil {
				bad(path+".source_addresses", obj, "source_addresses: %v", err)
			}
			for _, a := range addrs {
				if !addSource(l, &tn, a) {
					bad(path+".source_addresses", obj, "source address %s is not in any of the node's networks", a)
					break
				}
			}
		}
		for j, r := range n.Routes {
			rpath := fmt.Sprintf("%s.routes[%d]", path, j)
			to, err := parseRouteDest(r.To)
			if err != nil {
				bad(rpath+".to", obj, "%v", err)
			}
			via, err := netip.ParseAddr(r.Via)
			if err != nil || !via.Is4() {
				bad(rpath+".via", obj, "gateway %q is not an IPv4 address", r.Via)
			}
			tn.Routes = append(tn.Routes, topo.Route{To: to, Via: via})
		}
		l.Nodes = append(l.Nodes, tn)
	}
	for i, sv := range s.Services {
		path := fmt.Sprintf("services[%d]", i)
		ts, err := parseService(sv)
		obj := "service " + ts.Key()
		if err != nil {
			bad(path+".vip", "service", "%v", err)
		}
		if sv.FWMark != 0 {
			s.markRuleOf(i, func(p, format string, args ...any) { bad(p, obj, format, args...) })
		} else if len(sv.Ports) > 0 {
			bad(path+".ports", obj, "only a fwmark service takes ports (an address service's port is in its vip)")
		}
		for j, rs := range sv.RealServers {
			d := topo.Dest{Node: rs.Node, Port: ts.Port, Weight: 1, Forward: topo.DR}
			if rs.Port != nil {
				if *rs.Port < 0 || *rs.Port > 65535 {
					bad(fmt.Sprintf("%s.realservers[%d].port", path, j), obj, "port %d is outside 0–65535", *rs.Port)
				}
				d.Port = uint16(*rs.Port)
			}
			if rs.Weight != nil {
				d.Weight = *rs.Weight
			}
			if rs.Forward != "" {
				d.Forward = topo.Forward(rs.Forward)
			}
			ts.Dests = append(ts.Dests, d)
		}
		l.Services = append(l.Services, ts)
	}
	// The model checks only what parsed, and the per-mode setup only a valid
	// model; a problem in an earlier stage would echo through the later ones.
	if len(es) == 0 {
		for _, step := range []func() error{l.Validate, l.ApplyServices} {
			if err := step(); err != nil {
				var ps topo.Problems
				if !errors.As(err, &ps) {
					ps = topo.Problems{{Msg: err.Error()}}
				}
				for _, p := range ps {
					es = append(es, s.src.errorAt(p.Path, p.Object, p.Msg))
				}
				break
			}
		}
	}
	for i, sv := range s.Services {
		if sv.Scheduler != "" && !slices.Contains(scheduler.Names, sv.Scheduler) {
			es = append(es, s.src.errorAt(fmt.Sprintf("services[%d].scheduler", i), "service "+l.Services[i].Key(),
				fmt.Sprintf("scheduler %q is not one of %s", sv.Scheduler, strings.Join(scheduler.Names, ", "))))
		}
	}
	if len(es) > 0 {
		return labResult{errs: es}
	}
	return labResult{lab: l}
}

// SchedulerOf returns the scheduler a service uses, ipvsadm's default if unset.
func (sv *Service) SchedulerOf() string {
	if sv.Scheduler == "" {
		return DefaultScheduler
	}
	return sv.Scheduler
}

// parseHostAddress reads an interface address; the prefix length is the
// network's, so the address alone is what a user writes.
func parseHostAddress(s string, nw *topo.Network) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil || !p.Addr().Is4() {
			return netip.Prefix{}, fmt.Errorf("address %q is not an IPv4 address", s)
		}
		return p, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is4() {
		return netip.Prefix{}, fmt.Errorf("address %q is not an IPv4 address", s)
	}
	bits := 32
	if nw != nil && nw.Subnet.IsValid() {
		bits = nw.Subnet.Bits()
	}
	return netip.PrefixFrom(a, bits), nil
}

func parseRouteDest(s string) (netip.Prefix, error) {
	if s == "default" {
		return netip.MustParsePrefix("0.0.0.0/0"), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil || !p.Addr().Is4() || p.Masked() != p {
		return netip.Prefix{}, fmt.Errorf("route destination %q is not \"default\" or a prefix like 10.2.0.0/16", s)
	}
	return p, nil
}

// parseAddressList reads "A-B", "A", "P/len" items separated by commas.
func parseAddressList(s string) ([]netip.Addr, error) {
	var out []netip.Addr
	for item := range strings.SplitSeq(s, ",") {
		item = strings.TrimSpace(item)
		var from, to netip.Addr
		switch lo, hi, isRange := strings.Cut(item, "-"); {
		case isRange:
			var err1, err2 error
			from, err1 = netip.ParseAddr(strings.TrimSpace(lo))
			to, err2 = netip.ParseAddr(strings.TrimSpace(hi))
			if err1 != nil || err2 != nil || !from.Is4() || !to.Is4() || to.Less(from) {
				return nil, fmt.Errorf("%q is not a range of IPv4 addresses like 192.168.1.200-192.168.1.250", item)
			}
		case strings.Contains(item, "/"):
			p, err := netip.ParsePrefix(item)
			if err != nil || !p.Addr().Is4() {
				return nil, fmt.Errorf("%q is not an IPv4 prefix", item)
			}
			p = p.Masked()
			from, to = p.Addr(), lastOf(p)
		default:
			a, err := netip.ParseAddr(item)
			if err != nil || !a.Is4() {
				return nil, fmt.Errorf("%q is not an IPv4 address", item)
			}
			from, to = a, a
		}
		for a := from; ; a = a.Next() {
			if len(out) == maxSourceAddresses {
				return nil, fmt.Errorf("more than %d addresses", maxSourceAddresses)
			}
			out = append(out, a)
			if a == to {
				break
			}
		}
	}
	return out, nil
}

func lastOf(p netip.Prefix) netip.Addr {
	a := p.Addr().As4()
	v := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])
	v |= uint32(1)<<(32-p.Bits()) - 1
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// addSource puts a client source address on the interface whose network
// contains it.
func addSource(l *topo.Lab, n *topo.Node, a netip.Addr) bool {
	for i := range n.Interfaces {
		ifc := &n.Interfaces[i]
		if nw := l.Network(ifc.Network); nw != nil && nw.Subnet.Contains(a) {
			p := netip.PrefixFrom(a, nw.Subnet.Bits())
			if !slices.Contains(ifc.Addresses, p) {
				ifc.Addresses = append(ifc.Addresses, p)
			}
			return true
		}
	}
	return false
}

// parseService reads the service key: "VIP:port" with a protocol, or a
// firewall mark with its VIP addresses (the first one is the lab
// service's VIP, the others its MarkVIPs; markRuleOf checks them all).
func parseService(sv Service) (topo.Service, error) {
	ts := topo.Service{Protocol: sv.Protocol, FWMark: sv.FWMark}
	if sv.FWMark != 0 {
		// The protocol narrows the marking rule; the service has none.
		ts.Protocol = ""
		for i, v := range sv.VIP {
			a, err := netip.ParseAddr(v)
			switch {
			case err != nil:
				// markRuleOf reports it
			case i == 0:
				ts.VIP = a
			default:
				ts.MarkVIPs = append(ts.MarkVIPs, a)
			}
		}
		return ts, nil
	}
	if len(sv.VIP) != 1 {
		return ts, fmt.Errorf("vip %q: a service has one address and port (several addresses need a fwmark service)", sv.VIP.String())
	}
	if ts.Protocol == "" {
		ts.Protocol = "tcp"
	}
	vip := sv.VIP[0]
	ap, err := netip.ParseAddrPort(vip)
	if err != nil || !ap.Addr().Is4() {
		if _, aerr := netip.ParseAddr(vip); aerr == nil {
			return ts, fmt.Errorf("vip %q needs a port (192.168.1.110:80, or :0 for all ports)", vip)
		}
		return ts, fmt.Errorf("vip %q is not an IPv4 address and port like 192.168.1.110:80", vip)
	}
	ts.VIP, ts.Port = ap.Addr(), ap.Port()
	return ts, nil
}
