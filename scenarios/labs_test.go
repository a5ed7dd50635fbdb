package scenarios

// labFront opens the test labs: the classic public and internal networks,
// the client and the director. Each test adds its real servers and the
// rest; the text is the same as written out, so positions do not move.
const labFront = `networks:
  - {name: public, subnet: 192.168.1.0/24}
  - {name: internal, subnet: 10.1.1.0/24}
nodes:
  - {name: client, role: client, interfaces: [{network: public, address: 192.168.1.254}]}
  - name: director
    role: director
    interfaces:
      - {network: public, address: 192.168.1.1}
      - {network: internal, address: 10.1.1.1}
`
