package scenarios

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// markLab is a DR lab on one segment for the fwmark tests.
const markLab = `networks:
  - {name: lan, subnet: 192.168.1.0/24}
nodes:
  - {name: client, role: client, interfaces: [{network: lan, address: 192.168.1.254}]}
  - {name: director, role: director, interfaces: [{network: lan, address: 192.168.1.1}]}
  - {name: rs1, role: realserver, interfaces: [{network: lan, address: 192.168.1.2}]}
  - {name: rs2, role: realserver, interfaces: [{network: lan, address: 192.168.1.3}]}
`

func TestFWMarkServiceOverSeveralVIPs(t *testing.T) {
	s, err := Parse("m.yaml", []byte(markLab+`services:
  - fwmark: 1
    vip: [192.168.1.110, 192.168.1.111]
    protocol: tcp
    ports: [80, 443, 8000-8010]
    realservers: [{node: rs1}, {node: rs2, forward: nat}]
  - fwmark: 2
    vip: 192.168.1.112
    ports: 53
    realservers: [{node: rs1}]
  - {fwmark: 3, vip: 192.168.1.113, realservers: [{node: rs2}]}
  - {fwmark: 4, realservers: [{node: rs2}]}
  - {vip: "192.168.1.120:80", realservers: [{node: rs1}]}
`))
	require.NoError(t, err)
	assert.Equal(t, `table ip lvslab-marks {
	chain prerouting {
		type filter hook prerouting priority mangle; policy accept;
		ip daddr { 192.168.1.110, 192.168.1.111 } tcp dport { 80, 443, 8000-8010 } meta mark set 1
		ip daddr { 192.168.1.112 } meta l4proto { tcp, udp, sctp } th dport { 53 } meta mark set 2
		ip daddr { 192.168.1.113 } meta mark set 3
	}
}
`, s.MarkRuleset(), "one rule per fwmark service with a vip; fwmark 4 is the operator's to mark")

	lab := s.Lab()
	require.Len(t, lab.Services, 5, "one lab service per scenario service")
	assert.Equal(t, netip.MustParseAddr("192.168.1.110"), lab.Services[0].VIP)
	assert.Empty(t, lab.Services[0].Protocol, "a fwmark service has no protocol of its own")
	var director []string
	for _, p := range lab.Node("director").Interfaces[0].Addresses {
		director = append(director, p.Addr().String())
	}
	assert.Subset(t, director, []string{"192.168.1.110", "192.168.1.111", "192.168.1.112", "192.168.1.113"}, "every VIP on the director")
	var lo []string
	for _, p := range lab.Node("rs1").Loopback {
		lo = append(lo, p.Addr().String())
	}
	assert.ElementsMatch(t, []string{"192.168.1.110", "192.168.1.111", "192.168.1.112", "192.168.1.120"}, lo,
		"a DR real server holds every VIP of its services on lo")

	for _, tc := range []struct {
		target string
		svc    int
	}{
		{"192.168.1.111:443", 0}, {"192.168.1.110:8005", 0}, {"192.168.1.112:53", 1}, {"192.168.1.113:9", 2}, {"192.168.1.120:80", 4},
	} {
		ap := netip.MustParseAddrPort(tc.target)
		for i := range lab.Services {
			assert.Equal(t, i == tc.svc, s.aims(lab, i, ap), "load to %s reaches service %d", ap, i)
		}
	}
	assert.Equal(t, "192.168.1.110:80", s.defaultTarget(lab).String(), "the first VIP and port a fwmark service marks")

	rules, _, err := s.DirectorTable(s.Lab(), "director")
	require.NoError(t, err)
	assert.Equal(t, []string{
		"-A -f 1 -s wlc", "-a -f 1 -r 192.168.1.2 -g -w 1", "-a -f 1 -r 192.168.1.3 -m -w 1",
		"-A -f 2 -s wlc", "-a -f 2 -r 192.168.1.2 -g -w 1",
		"-A -f 3 -s wlc", "-a -f 3 -r 192.168.1.3 -g -w 1",
		"-A -f 4 -s wlc", "-a -f 4 -r 192.168.1.3 -g -w 1",
		"-A -t 192.168.1.120:80 -s wlc", "-a -t 192.168.1.120:80 -r 192.168.1.2:80 -g -w 1",
	}, rules)
}

func TestBrokenFWMarkServices(t *testing.T) {
	for _, tc := range []struct {
		name, src string
		want      []string
	}{{
		name: "a bad address in the list, a bad port, a bad protocol",
		src: `services:
  - fwmark: 1
    vip: [192.168.1.110, 192.168.1.300, 192.168.1.110]
    protocol: icmp
    ports: [80, 90-85, http]
    realservers: [{node: rs1}]
`,
		want: []string{
			`m.yaml:10:26: service FWM 1: vip "192.168.1.300" of a fwmark service is not an IPv4 address (a fwmark service covers addresses; its ports go in ports:)`,
			`m.yaml:10:41: service FWM 1: vip 192.168.1.110 is listed twice`,
			`m.yaml:11:15: service FWM 1: protocol "icmp" is not tcp, udp or sctp`,
			`m.yaml:12:17: service FWM 1: port "90-85" is not a port (1–65535) or a range like 8000-8010`,
			`m.yaml:12:24: service FWM 1: port "http" is not a port (1–65535) or a range like 8000-8010`,
		},
	}, {
		name: "ports of a fwmark service without vip",
		src: `services:
  - {fwmark: 1, ports: [80], realservers: [{node: rs1}]}
`,
		want: []string{`m.yaml:9:14: service FWM 1: ports and protocol narrow the marking rule of a fwmark service's vip, and it has none (without vip the marks are the nftables field's)`},
	}, {
		name: "an address service with several VIPs or with ports",
		src: `services:
  - {vip: ["192.168.1.110:80", "192.168.1.111:80"], realservers: [{node: rs1}]}
  - {vip: "192.168.1.112:80", ports: [443], realservers: [{node: rs1}]}
`,
		want: []string{
			`m.yaml:9:11: service: vip "192.168.1.110:80, 192.168.1.111:80": a service has one address and port (several addresses need a fwmark service)`,
			`m.yaml:10:38: service TCP 192.168.1.112:80: only a fwmark service takes ports (an address service's port is in its vip)`,
		},
	}, {
		name: "a mapping for vip",
		src: `services:
  - {vip: {address: 192.168.1.110}, fwmark: 1}
`,
		want: []string{`m.yaml:9:11: expected a single value, not a mapping`},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("m.yaml", []byte(markLab+tc.src))
			require.Error(t, err)
			assert.Equal(t, strings.Join(tc.want, "\n"), err.Error())
		})
	}
}

// TestBlockFWMarkWarnings: an ipvsadm block's -f service names no address,
// so its DR and TUN real servers get no VIP on lo unless another service
// puts one there.
func TestBlockFWMarkWarnings(t *testing.T) {
	s, err := Parse("m.yaml", []byte(markLab+`services:
  - {vip: 192.168.1.110:80, realservers: [{node: rs1}]}
ipvsadm: |
  -A -f 7 -s rr
  -a -f 7 -r 192.168.1.2 -g
  -a -f 7 -r 192.168.1.3 -g
`))
	require.NoError(t, err)
	assert.Equal(t, `m.yaml:13:3: ipvsadm block: real server "rs2" (dr) of FWM 7 holds no VIP on lo: an ipvsadm -f service names no address, so the lab puts none there and the real server drops what the director forwards (declare the service under services: with fwmark and vip instead)`,
		Errors(s.Warnings()).Error(), "rs1 holds the VIP of its other service")
}

// TestNFTablesRefused: a node's ruleset that nft refuses stops the start at
// its line in the file, and leaves nothing behind.
func TestNFTablesRefused(t *testing.T) {
	needLabs(t)
	s, err := Parse("n.yaml", []byte(`networks:
  - {name: lan, subnet: 192.168.1.0/24}
nodes:
  - {name: client, role: client, interfaces: [{network: lan, address: 192.168.1.254}]}
  - name: director
    role: director
    interfaces: [{network: lan, address: 192.168.1.1}]
    nftables: |
      table ip lvstest {
        chain pre {
          type filter hook prerouting priority mangle;
          ip daddr 192.168.1.110 meta mark sett 1
        }
      }
  - {name: rs1, role: realserver, interfaces: [{network: lan, address: 192.168.1.2}]}
ipvsadm: |
  -A -f 1 -s rr
  -a -f 1 -r 192.168.1.2 -m
`))
	require.NoError(t, err)
	runDir := t.TempDir()
	_, err = s.Start(context.Background(), RunOptions{RunDir: runDir})
	require.Error(t, err)
	var e *Error
	require.True(t, errors.As(err, &e), "%v", err)
	assert.Equal(t, 12, e.Line, "the ruleset's line 4: %v", e)
	assert.Equal(t, `node "director"`, e.Object)
	assert.Contains(t, e.Msg, "nft refused the ruleset: syntax error")
	requireNothingLeft(t, runDir, "")
}

// TestBlockFWMarkWithOwnRules: an ipvsadm block's -f service runs on the
// marking rules of the director's nftables field, as an operator's would
// (here: the director's own address, port 8080, to NAT real servers).
func TestBlockFWMarkWithOwnRules(t *testing.T) {
	needLabs(t)
	s, err := Parse("own.yaml", []byte(labFront+`    nftables: |
      table ip operator {
        chain pre {
          type filter hook prerouting priority mangle; policy accept;
          ip daddr 192.168.1.1 tcp dport 8080 meta mark set 7
        }
      }
  - {name: rs1, role: realserver, interfaces: [{network: internal, address: 10.1.1.2}], server: {port: 8080}}
  - {name: rs2, role: realserver, interfaces: [{network: internal, address: 10.1.1.3}], server: {port: 8080}}
ipvsadm: |
  -A -f 7 -s rr
  -a -f 7 -r 10.1.1.2 -m
  -a -f 7 -r 10.1.1.3 -m
load:
  - {name: marked, target: 192.168.1.1:8080, rate: 50/s, duration: 1s, timeout: 500ms}
`))
	require.NoError(t, err)
	assert.Empty(t, s.Warnings(), "NAT real servers need no VIP")
	runDir := t.TempDir()
	rep, err := s.Run(context.Background(), RunOptions{Scale: 1, RunDir: runDir})
	require.NoError(t, err)
	require.NotNil(t, rep.Load)
	assert.NotZero(t, rep.Load.Requests)
	assert.Zero(t, rep.Load.Errors, "%v", rep.Load.ErrorsByClass)
	require.Len(t, rep.Services, 1)
	svc := rep.Services[0]
	assert.Equal(t, uint32(7), svc.FWMark)
	var conns uint64
	for _, rs := range svc.Realservers {
		conns += rs.Connections
	}
	assert.Equal(t, rep.Load.Requests, conns, "the director counted every connection the client made")
	requireNothingLeft(t, runDir, rep.Manifest["lab"])
}
