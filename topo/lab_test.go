package topo

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }
func addr(s string) netip.Addr  { return netip.MustParseAddr(s) }

// natLab is the classic VS/NAT example (table 21-2 of the classic texts).
func natLab(forward Forward) *Lab {
	rs := func(name, a string) Node {
		return Node{Name: name, Role: RealServer, Interfaces: []Interface{{Network: "internal", Addresses: []netip.Prefix{pfx(a)}}}}
	}
	return &Lab{
		Name: "nat",
		Networks: []Network{
			{Name: "public", Subnet: pfx("192.168.1.0/24")},
			{Name: "internal", Subnet: pfx("10.1.1.0/24"), MTU: 9000},
		},
		Nodes: []Node{
			{Name: "client", Role: Client, Interfaces: []Interface{{Network: "public", Addresses: []netip.Prefix{pfx("192.168.1.254/24")}}}},
			{Name: "director", Role: Director, Interfaces: []Interface{
				{Network: "public", Addresses: []netip.Prefix{pfx("192.168.1.1/24")}},
				{Network: "internal", Addresses: []netip.Prefix{pfx("10.1.1.1/24")}},
			}},
			rs("rs1", "10.1.1.2/24"), rs("rs2", "10.1.1.3/24"), rs("rs3", "10.1.1.4/24"),
		},
		Services: []Service{{VIP: addr("192.168.1.110"), Port: 80, Protocol: "tcp", Dests: []Dest{
			{Node: "rs1", Port: 80, Weight: 1, Forward: forward},
			{Node: "rs2", Port: 80, Weight: 2, Forward: forward},
			{Node: "rs3", Port: 80, Weight: 3, Forward: forward},
		}}},
	}
}

func TestValidateAcceptsTheClassicNATLab(t *testing.T) {
	l := natLab(NAT)
	require.NoError(t, l.Validate())
	require.NoError(t, l.ApplyServices())
	require.NoError(t, l.Validate(), "the derived setup is valid too")
}

func TestValidateReportsEveryProblemWithItsPath(t *testing.T) {
	l := natLab(NAT)
	l.Networks = append(l.Networks, Network{Name: "public", Subnet: pfx("10.1.0.0/16")})
	l.Nodes[2].Interfaces[0].Addresses[0] = pfx("10.1.2.9/24")
	l.Nodes[3].Interfaces[0].Network = "nowhere"
	l.Nodes[4].Role = "server"
	l.Nodes = append(l.Nodes, Node{Name: "rs4", Role: RealServer, Interfaces: []Interface{{Network: "internal", Addresses: []netip.Prefix{pfx("10.1.1.4/24")}}},
		Routes: []Route{{To: pfx("0.0.0.0/0"), Via: addr("172.16.0.1")}}})
	l.Services[0].Dests[0].Forward = "ipip"
	l.Services[0].Dests = append(l.Services[0].Dests, Dest{Node: "client", Port: 80, Forward: NAT, Weight: 70000})

	err := l.Validate()
	require.Error(t, err)
	var got []string
	for _, p := range err.(Problems) {
		got = append(got, p.Path+" | "+p.Error())
	}
	assert.Equal(t, []string{
		`networks[2].name | network "public": is declared twice`,
		`networks[2].subnet | network "public": subnet 10.1.0.0/16 overlaps network "internal" (10.1.1.0/24)`,
		`nodes[2].interfaces[0].address | node "rs1": address 10.1.2.9 is not in network internal (10.1.1.0/24)`,
		`nodes[3].interfaces[0].network | node "rs2": network "nowhere" is not declared`,
		`nodes[4].role | node "rs3": role "server" is not one of client, director, realserver, router`,
		`nodes[5].interfaces[0].address | node "rs4": address 10.1.1.4 is already used by node "rs3"`,
		`nodes[5].routes[0].via | node "rs4": gateway 172.16.0.1 is not on any of the node's networks`,
		`services[0].realservers[0].forward | service TCP 192.168.1.110:80: forward "ipip" is not one of nat, dr, tun`,
		`services[0].realservers[2].node | service TCP 192.168.1.110:80: node "rs3" is a server, not a realserver`,
		`services[0].realservers[3].node | service TCP 192.168.1.110:80: node "client" is a client, not a realserver`,
		`services[0].realservers[3].weight | service TCP 192.168.1.110:80: weight 70000 is outside 0–65535`,
	}, got)
}

func TestApplyServicesPerForwardingMethod(t *testing.T) {
	t.Run("nat real servers route back through the director", func(t *testing.T) {
		l := natLab(NAT)
		require.NoError(t, l.ApplyServices())
		for _, name := range []string{"rs1", "rs2", "rs3"} {
			assert.Equal(t, []Route{{To: pfx("0.0.0.0/0"), Via: addr("10.1.1.1")}}, l.Node(name).Routes, name)
			assert.Empty(t, l.Node(name).Loopback)
		}
		d := l.Node("director")
		assert.Equal(t, []netip.Prefix{pfx("192.168.1.1/24"), pfx("192.168.1.110/24")}, d.Interfaces[0].Addresses, "VIP on the public side, where the client ARPs for it")
		assert.Equal(t, []netip.Addr{addr("192.168.1.110")}, d.DropVIPs)
		assert.Equal(t, "0", d.Sysctls["net.ipv4.ip_forward"])
	})
	t.Run("dr real servers hold the VIP on lo and stay silent in ARP", func(t *testing.T) {
		l := natLab(DR)
		l.Nodes[1].Interfaces = append(l.Nodes[1].Interfaces[:1:1], l.Nodes[1].Interfaces[1])
		require.NoError(t, l.ApplyServices())
		rs := l.Node("rs2")
		assert.Equal(t, []netip.Prefix{pfx("192.168.1.110/32")}, rs.Loopback)
		assert.Equal(t, "1", rs.Sysctls["net.ipv4.conf.all.arp_ignore"])
		assert.Equal(t, "2", rs.Sysctls["net.ipv4.conf.all.arp_announce"])
		assert.Empty(t, rs.Routes)
	})
	t.Run("tun real servers decapsulate and accept asymmetric sources", func(t *testing.T) {
		l := natLab(TUN)
		l.Node("rs3").Sysctls = map[string]string{"net.ipv4.conf.all.rp_filter": "2"}
		require.NoError(t, l.ApplyServices())
		rs := l.Node("rs1")
		assert.Equal(t, []netip.Addr{addr("192.168.1.110")}, rs.Decap)
		assert.Equal(t, []netip.Prefix{pfx("192.168.1.110/32")}, rs.Loopback)
		assert.Equal(t, "0", rs.Sysctls["net.ipv4.conf.all.rp_filter"])
		assert.Equal(t, "2", l.Node("rs3").Sysctls["net.ipv4.conf.all.rp_filter"], "the operator's value wins")
	})
	t.Run("a fwmark service's every address is wired", func(t *testing.T) {
		l := natLab(TUN)
		l.Services[0].FWMark, l.Services[0].Port, l.Services[0].Protocol = 1, 0, ""
		l.Services[0].MarkVIPs = []netip.Addr{addr("192.168.1.111")}
		require.NoError(t, l.ApplyServices())
		assert.Equal(t, []netip.Addr{addr("192.168.1.110"), addr("192.168.1.111")}, l.Node("director").DropVIPs)
		rs := l.Node("rs1")
		assert.Equal(t, []netip.Prefix{pfx("192.168.1.110/32"), pfx("192.168.1.111/32")}, rs.Loopback)
		assert.Equal(t, []netip.Addr{addr("192.168.1.110"), addr("192.168.1.111")}, rs.Decap)
	})
	t.Run("dr without a shared segment is a problem", func(t *testing.T) {
		l := natLab(DR)
		l.Nodes[1].Interfaces = l.Nodes[1].Interfaces[:1]
		err := l.ApplyServices()
		require.Error(t, err)
		assert.Len(t, err.(Problems), 3)
		assert.Equal(t, "services[0].realservers[0]", err.(Problems)[0].Path)
		assert.Contains(t, err.Error(), `real server "rs1": DR needs the director on the same segment`)
	})
	t.Run("applying twice changes nothing", func(t *testing.T) {
		l := natLab(TUN)
		require.NoError(t, l.ApplyServices())
		once := l.String()
		require.NoError(t, l.ApplyServices())
		assert.Equal(t, once, l.String())
	})
}

func TestStringPrintsTheDerivedSetup(t *testing.T) {
	l := natLab(NAT)
	require.NoError(t, l.ApplyServices())
	assert.Equal(t, `lab nat
  network public 192.168.1.0/24 mtu 1500
  network internal 10.1.1.0/24 mtu 9000
  node client (client)
    eth0 public 192.168.1.254/24
  node director (director)
    eth0 public 192.168.1.1/24 192.168.1.110/24
    eth1 internal 10.1.1.1/24
    virtual addresses 192.168.1.110 (the dataplane owns their services' traffic)
    sysctl net.ipv4.ip_forward=0
  node rs1 (realserver)
    eth0 internal 10.1.1.2/24
    route 0.0.0.0/0 via 10.1.1.1
  node rs2 (realserver)
    eth0 internal 10.1.1.3/24
    route 0.0.0.0/0 via 10.1.1.1
  node rs3 (realserver)
    eth0 internal 10.1.1.4/24
    route 0.0.0.0/0 via 10.1.1.1
  service TCP 192.168.1.110:80
    -> rs1:80 nat weight 1
    -> rs2:80 nat weight 2
    -> rs3:80 nat weight 3
`, l.String())
}
