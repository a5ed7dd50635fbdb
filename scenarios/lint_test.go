package scenarios

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestWarnings(t *testing.T) {
	s, err := Parse("w.yaml", []byte(`
networks:
  - {name: lan, subnet: 192.168.1.0/24}
  - {name: far, subnet: 10.2.0.0/24}
nodes:
  - {name: client, role: client, interfaces: [{network: lan, address: 192.168.1.254}]}
  - {name: director, role: director, interfaces: [{network: lan, address: 192.168.1.1}, {network: far, address: 10.2.0.1}]}
  - {name: rs1, role: realserver, interfaces: [{network: lan, address: 192.168.1.2}]}
  - {name: rs2, role: realserver, interfaces: [{network: far, address: 10.2.0.2}]}
services:
  - vip: 192.168.1.110:0
    persistence: {timeout: 60s}
    realservers:
      - {node: rs1, port: 8080}
      - {node: rs2, port: 0, forward: tun}
  - vip: 192.168.1.111:80
    realservers: [{node: rs1, port: 8080, forward: nat}]
`))
	require.NoError(t, err)
	ws := s.Warnings()
	assert.Equal(t, `w.yaml:14:27: real server "rs1": port 8080 is ignored: a port-0 service keeps the client's destination port (the kernel rewrites only packets sent to the service port)
w.yaml:15:9: real server "rs2": TUN adds a 20-byte IPIP header: full-size client packets (MTU 1500) do not fit the tunnel path (MTU 1500); the director answers them with ICMP fragmentation-needed (raise the real server network's mtu to 1520 or lower the clients')`, Errors(ws).Error())
}
