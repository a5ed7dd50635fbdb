package topo

import "fmt"

// fabricIfName is the fabric end of node i's j-th interface: the lab ID,
// the node index in hex, "." and the interface index.
func (in *Instance) fabricIfName(i, j int) string { return fmt.Sprintf("%s%x.%d", in.ID, i, j) }

// FabricPort is where a node's interface meets its network in the fabric
// namespace: the fabric end of the node's veth pair (a port of the
// network's bridge) and that bridge. A link impairment (topo/impair)
// splices itself in between the two.
type FabricPort struct {
	Node    string
	IfName  string // inside the node: eth0, eth1, …
	Network string
	// Port is the fabric end of the veth pair, Bridge the network's bridge.
	Port      string
	PortIndex int
	Bridge    int
	MTU       int
	NodeIndex int // in Lab.Nodes
	Interface int // in the node's Interfaces
}

// FabricPorts returns the fabric ports of every interface of node.
func (in *Instance) FabricPorts(node string) ([]FabricPort, error) {
	for i, n := range in.Lab.Nodes {
		if n.Name != node {
			continue
		}
		var out []FabricPort
		for j, ifc := range n.Interfaces {
			nw := in.Lab.Network(ifc.Network)
			out = append(out, FabricPort{
				Node: node, IfName: IfName(j), Network: ifc.Network,
				Port: in.fabricIfName(i, j), PortIndex: fabricIfIndex(i, j), Bridge: in.bridges[nw.Name],
				MTU: nw.MTUOf(), NodeIndex: i, Interface: j,
			})
		}
		return out, nil
	}
	return nil, fmt.Errorf("lab %s has no node %q", in.Lab.Name, node)
}

// VethGroup is the device group of every veth end in a fabric. A veth pair
// added to the fabric later (an impairment's) joins it and carries the lab
// ID in its name, so teardown and `lvslab destroy --all` remove it with
// the rest.
const VethGroup = vethGroup
