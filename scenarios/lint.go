package scenarios

import (
	"fmt"

	"github.com/lvslab/lvslab/topo"
)

// ipipOverhead is the outer IPv4 header IPIP adds to every packet.
const ipipOverhead = 20

// Warnings are what lvslab validate mentions without failing: setups that
// run but may surprise, in file order.
func (s *Scenario) Warnings() []*Error {
	var ws []*Error
	lab := s.Lab()
	if lab == nil {
		return nil
	}
	mtu := func(network string) int {
		if nw := lab.Network(network); nw != nil && nw.MTU != 0 {
			return nw.MTU
		}
		return topo.DefaultMTU
	}
	clientMTU := 0
	for _, n := range lab.Nodes {
		if n.Role == topo.Client {
			for _, ifc := range n.Interfaces {
				clientMTU = max(clientMTU, mtu(ifc.Network))
			}
		}
	}
	for i, sv := range lab.Services {
		for j, d := range sv.Dests {
			n := lab.Node(d.Node)
			if d.Forward != topo.TUN || n == nil || len(n.Interfaces) == 0 {
				continue
			}
			if rsMTU := mtu(n.Interfaces[0].Network); rsMTU < clientMTU+ipipOverhead {
				ws = append(ws, s.src.errorAt(fmt.Sprintf("services[%d].realservers[%d]", i, j), fmt.Sprintf("real server %q", d.Node),
					fmt.Sprintf("TUN adds a %d-byte IPIP header: full-size client packets (MTU %d) do not fit the tunnel path (MTU %d); the director answers them with ICMP fragmentation-needed (raise the real server network's mtu to %d or lower the clients')",
						ipipOverhead, clientMTU, rsMTU, clientMTU+ipipOverhead)))
			}
		}
	}
	for i, sv := range s.Services {
		if lab.Services[i].Port != 0 || lab.Services[i].FWMark != 0 {
			continue
		}
		for j, rs := range sv.RealServers {
			if rs.Port != nil && *rs.Port != 0 {
				ws = append(ws, s.src.errorAt(fmt.Sprintf("services[%d].realservers[%d].port", i, j), fmt.Sprintf("real server %q", rs.Node),
					fmt.Sprintf("port %d is ignored: a port-0 service keeps the client's destination port (the kernel rewrites only packets sent to the service port)", *rs.Port)))
			}
		}
	}
	return Errors(append(ws, s.blockMarkWarnings()...)).sorted()
}

// blockMarkWarnings warns about the DR and TUN real servers of an ipvsadm
// block's fwmark services that hold no VIP: -f names no address, so
// nothing tells the lab which VIPs to put on their lo, and they would drop
// what the director sends them.
func (s *Scenario) blockMarkWarnings() []*Error {
	lab, err := s.BuildLab()
	if err != nil {
		return nil
	}
	var ws []*Error
	for i, bs := range s.block {
		if bs.FWMark == 0 {
			continue
		}
		for j, d := range bs.Dests {
			n := lab.Node(d.Node)
			if n == nil || d.Forward == topo.NAT || len(n.Loopback) > 0 {
				continue
			}
			w := s.blockError(s.blockLines[i][j], fmt.Sprintf("real server %q (%s) of FWM %d holds no VIP on lo: an ipvsadm -f service names no address, so the lab puts none there and the real server drops what the director forwards (declare the service under services: with fwmark and vip instead)", d.Node, d.Forward, bs.FWMark))
			ws = append(ws, w)
		}
	}
	return ws
}
