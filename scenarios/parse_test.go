package scenarios

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestExamplesParse(t *testing.T) {
	entries, err := Examples.ReadDir("examples")
	require.NoError(t, err)
	require.NotEmpty(t, entries)
	for _, e := range entries {
		t.Run(e.Name(), func(t *testing.T) {
			s, err := LoadExample(strings.TrimSuffix(e.Name(), ".yaml"))
			require.NoError(t, err)
			require.NoError(t, s.Lab().Validate())
		})
	}
}

func TestClassicNATDerivesTheGateway(t *testing.T) {
	s, err := LoadExample("nat")
	require.NoError(t, err)
	l := s.Lab()
	assert.Equal(t, "classic-nat", l.Name)
	assert.Contains(t, l.String(), "node rs2 (realserver)\n    eth0 internal 10.1.1.3/24\n    route 0.0.0.0/0 via 10.1.1.1\n")
	assert.Contains(t, l.String(), "eth0 public 192.168.1.1/24 192.168.1.110/24\n")
	l.Nodes[0].Name = "changed"
	assert.Equal(t, "client", s.Lab().Nodes[0].Name, "Lab returns a copy")
}

func TestSourceAddressesLandOnTheirNetwork(t *testing.T) {
	s, err := Parse("s.yaml", []byte(`
name: src
networks: [{name: pub, subnet: 192.168.1.0/24}]
nodes:
  - name: client
    role: client
    interfaces: [{network: pub, address: 192.168.1.254}]
    source_addresses: 192.168.1.200-192.168.1.202, 192.168.1.10
`))
	require.NoError(t, err)
	assert.Contains(t, s.Lab().String(), "eth0 pub 192.168.1.254/24 192.168.1.200/24 192.168.1.201/24 192.168.1.202/24 192.168.1.10/24\n")
}

// TestBrokenScenarios: each broken file gives every problem at once, at its
// position, naming the object.
func TestBrokenScenarios(t *testing.T) {
	const lab = "\n" + labFront
	for _, tc := range []struct {
		name, src string
		want      []string
	}{{
		name: "address outside its network",
		src: lab + `  - {name: rs4, role: realserver, interfaces: [{network: internal, address: 10.1.2.9}]}
`,
		want: []string{`b.yaml:12:77: node "rs4": address 10.1.2.9 is not in network internal (10.1.1.0/24)`},
	}, {
		name: "unknown fields everywhere, all at once",
		src: lab + `  - {name: rs1, role: realserver, interfaces: [{network: internal, adress: 10.1.1.2}]}
servics: []
`,
		want: []string{
			`b.yaml:12:68: unknown field "adress" (expected one of network, address)`,
			`b.yaml:13:1: unknown field "servics" (expected one of name, description, networks, nodes, services, ipvsadm, load, faults, expect)`,
		},
	}, {
		name: "unparsable values and semantic problems together",
		src: `
networks:
  - {name: lan, subnet: 192.168.1.0/33}
  - {name: lan2, subnet: 10.0.0.5/8, mtu: 20}
nodes:
  - {name: rs1, role: realserver, interfaces: [{network: lan2, address: 10.0.0.300}]}
  - {name: rs1, role: nobody, interfaces: [{network: lan2, address: 10.0.0.1}], routes: [{to: 10.9.0.0/16, via: 10.0.0.1.1}]}
services:
  - {vip: 192.168.1.110, realservers: [{node: rs1}]}
`,
		want: []string{
			`b.yaml:3:25: network "lan": subnet "192.168.1.0/33" is not a prefix like 10.1.1.0/24`,
			`b.yaml:6:73: node "rs1": address "10.0.0.300" is not an IPv4 address`,
			`b.yaml:7:113: node "rs1": gateway "10.0.0.1.1" is not an IPv4 address`,
			`b.yaml:9:11: service: vip "192.168.1.110" needs a port (192.168.1.110:80, or :0 for all ports)`,
		},
	}, {
		name: "model problems after parsing",
		src: `
networks:
  - {name: lan, subnet: 10.0.0.5/8, mtu: 20}
nodes:
  - {name: rs1, role: realserver, interfaces: [{network: lan, address: 10.0.0.2}]}
  - {name: rs1, role: nobody, interfaces: [{network: lan, address: 10.0.0.2}]}
services:
  - {vip: 10.0.0.9:80, scheduler: fastest, realservers: [{node: rs1, forward: nat}]}
`,
		want: []string{
			`b.yaml:3:25: network "lan": subnet 10.0.0.5/8 has host bits set (did you mean 10.0.0.0/8?)`,
			`b.yaml:3:42: network "lan": mtu 20 is outside 68–65535`,
			`b.yaml:6:12: node "rs1": is declared twice`,
			`b.yaml:6:23: node "rs1": role "nobody" is not one of client, director, realserver, router`,
			`b.yaml:6:68: node "rs1": address 10.0.0.2 is already used by node "rs1"`,
			`b.yaml:8:5: service TCP 10.0.0.9:80: the lab has no director node`,
			`b.yaml:8:35: service TCP 10.0.0.9:80: scheduler "fastest" is not one of rr, wrr, lc, wlc, lblc, lblcr, dh, sh, sed, nq, fo, ovf, mh, twos`,
		},
	}, {
		name: "scheduler unknown",
		src: lab + `services:
  - {vip: 192.168.1.110:80, scheduler: fastest}
`,
		want: []string{`b.yaml:13:40: service TCP 192.168.1.110:80: scheduler "fastest" is not one of rr, wrr, lc, wlc, lblc, lblcr, dh, sh, sed, nq, fo, ovf, mh, twos`},
	}, {
		name: "nat real server without a director on its network",
		src: lab + `  - {name: rs1, role: realserver, interfaces: [{network: public, address: 192.168.1.2}]}
  - {name: far, role: client, interfaces: [{network: internal, address: 10.1.1.9}]}
services:
  - vip: 192.168.1.110:80
    realservers:
      - {node: far, forward: nat}
`,
		want: []string{`b.yaml:17:16: service TCP 192.168.1.110:80: node "far" is a client, not a realserver`},
	}, {
		name: "wrong shapes",
		src: `
networks: {name: lan}
nodes:
  - name: [a, b]
`,
		want: []string{
			`b.yaml:2:11: expected a list`,
			`b.yaml:4:11: expected a single value, not a sequence`,
		},
	}, {
		name: "yaml syntax",
		src:  "networks:\n  - {name: lan\n",
		want: []string{`b.yaml:2:5: could not find flow mapping end token '}'`},
	}, {
		name: "type mismatch",
		src:  "networks:\n  - {name: lan, subnet: 10.0.0.0/8, mtu: big}\n",
		want: []string{`b.yaml:2:42: "big" is not a whole number`},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("b.yaml", []byte(tc.src))
			require.Error(t, err)
			assert.Equal(t, strings.Join(tc.want, "\n"), err.Error())
		})
	}
}

func TestLoadReadsAFile(t *testing.T) {
	dir := t.TempDir()
	b, err := Examples.ReadFile("examples/dr.yaml")
	require.NoError(t, err)
	path := filepath.Join(dir, "dr.yaml")
	require.NoError(t, os.WriteFile(path, b, 0o644))
	s, err := Load(path)
	require.NoError(t, err)
	assert.Len(t, s.Nodes, 5)
	_, err = Load(filepath.Join(dir, "missing.yaml"))
	assert.ErrorIs(t, err, os.ErrNotExist)
}

func FuzzParse(f *testing.F) {
	entries, _ := Examples.ReadDir("examples")
	for _, e := range entries {
		b, _ := Examples.ReadFile("examples/" + e.Name())
		f.Add(b)
	}
	f.Add([]byte(aliasBomb(6)))
	f.Add([]byte("networks: [{name: a, subnet: 10.0.0.0/8}]\nnodes: [{name: x, source_addresses: 10.0.0.0/8}]"))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := Parse("f.yaml", b)
		if err == nil {
			require.NoError(t, s.Lab().Validate())
		}
	})
}
