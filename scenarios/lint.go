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
	return Errors(ws).sorted()
}
