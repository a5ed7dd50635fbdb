package scenarios

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// blockLab is a lab whose real servers only the ipvsadm block names.
const blockLab = "\nname: block\n" + labFront + `  - {name: rs1, role: realserver, interfaces: [{network: public, address: 192.168.1.2}]}
  - {name: rs2, role: realserver, interfaces: [{network: internal, address: 10.1.1.2}]}
  - {name: rs3, role: realserver, interfaces: [{network: internal, address: 10.1.1.3}]}
`

// TestBlockRealServersGetTheirSetup: a real server the ipvsadm block alone
// declares is wired for its forwarding method as a structured one is.
func TestBlockRealServersGetTheirSetup(t *testing.T) {
	s, err := Parse("b.yaml", []byte(blockLab+`
ipvsadm: |
  -A -t 192.168.1.110:80 -s rr
  -a -t 192.168.1.110:80 -r 192.168.1.2:80 -g
  -A -t 192.168.1.111:80
  -a -t 192.168.1.111:80 -r 10.1.1.2:8080 -m -w 3
  -a -t 192.168.1.111:80 -r 10.1.1.3 -i
`))
	require.NoError(t, err)
	l, err := s.BuildLab()
	require.NoError(t, err)
	require.NoError(t, l.Validate())
	rs1, rs2, rs3 := l.Node("rs1"), l.Node("rs2"), l.Node("rs3")
	// DR: the VIP on lo, no ARP for it.
	assert.Equal(t, "192.168.1.110/32", rs1.Loopback[0].String())
	assert.Equal(t, "1", rs1.Sysctls["net.ipv4.conf.all.arp_ignore"])
	assert.Equal(t, "2", rs1.Sysctls["net.ipv4.conf.all.arp_announce"])
	// NAT: the default route through the director.
	require.Len(t, rs2.Routes, 1)
	assert.Equal(t, "0.0.0.0/0 10.1.1.1", rs2.Routes[0].To.String()+" "+rs2.Routes[0].Via.String())
	assert.Empty(t, rs2.Loopback)
	// TUN: decapsulation of the VIP, the VIP on lo, rp_filter off.
	assert.Equal(t, "192.168.1.111", rs3.Decap[0].String())
	assert.Equal(t, "192.168.1.111/32", rs3.Loopback[0].String())
	assert.Equal(t, "0", rs3.Sysctls["net.ipv4.conf.all.rp_filter"])
	// The director owns both VIPs.
	assert.Contains(t, l.String(), "eth0 public 192.168.1.1/24 192.168.1.110/24 192.168.1.111/24\n")
	// The table the director loads is the block, once.
	rules, _, err := s.DirectorTable(s.Lab(), "director")
	require.NoError(t, err)
	assert.Len(t, rules, 5)
}

// TestBlockAddsToAStructuredService: block destinations of a structured
// service are wired too, next to the structured ones.
func TestBlockAddsToAStructuredService(t *testing.T) {
	s, err := Parse("b.yaml", []byte(blockLab+`
services:
  - vip: 192.168.1.110:80
    realservers: [{node: rs2, forward: nat}]
ipvsadm: |
  -a -t 192.168.1.110:80 -r 192.168.1.2 -g
`))
	require.NoError(t, err)
	l, err := s.BuildLab()
	require.NoError(t, err)
	assert.Len(t, l.Services, 1)
	assert.Len(t, l.Services[0].Dests, 2)
	assert.Equal(t, "192.168.1.110/32", l.Node("rs1").Loopback[0].String())
	assert.NotEmpty(t, l.Node("rs2").Routes)
}

// TestBlockRealServerOfNoNode: a destination address no real server owns,
// or one the lab cannot wire, is an error at its block line.
func TestBlockRealServerOfNoNode(t *testing.T) {
	lab := strings.Replace(blockLab, "\nnodes:\n", "\n  - {name: far, subnet: 10.2.0.0/24}\nnodes:\n  - {name: rs4, role: realserver, interfaces: [{network: far, address: 10.2.0.2}]}\n", 1)
	_, err := Parse("b.yaml", []byte(lab+`
ipvsadm: |
  -A -t 192.168.1.110:80
  # a comment keeps its line
  -a -t 192.168.1.110:80 -r 10.1.1.9:80 -m
  -a -t 192.168.1.110:80 -r 192.168.1.254:80 -m
  -a -t 192.168.1.110:80 -r 10.2.0.2:80 -g
`))
	require.Error(t, err)
	assert.Equal(t, `b.yaml:22:3: ipvsadm block: real server 10.1.1.9 is the address of no real server node
b.yaml:23:3: ipvsadm block: real server 192.168.1.254 is the address of no real server node
b.yaml:24:3: ipvsadm block: real server "rs4": DR needs the director on the same segment (the director rewrites only the MAC address)`, err.Error())
}
