package ipvsadm

import (
	"bytes"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The worked examples of spec §8.4 and §8.5 (testdata/spec84, copied from
// the spec's code blocks, trailing spaces included): each state is built
// with ipvsadm -R, the traffic counters are set by hand, and the listing
// must equal the example byte for byte.

func golden(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile("testdata/spec84/" + name)
	require.NoError(t, err)
	return string(b)
}

// restored is a fake kernel after `ipvsadm -R` of script.
func restored(t *testing.T, script string) *fakeDirector {
	t.Helper()
	d := newFakeDirector()
	var out bytes.Buffer
	require.Equal(t, 0, Run(d, []string{"-R"}, strings.NewReader(script), &out, &out), out.String())
	require.Empty(t, out.String())
	return d
}

func (f *fakeDirector) service(t *testing.T, svc string) *ServiceEntry {
	t.Helper()
	for _, s := range f.services {
		if serviceName(s, fmtNumeric) == svc {
			return s
		}
	}
	t.Fatalf("no service %q", svc)
	return nil
}

func (f *fakeDirector) dest(t *testing.T, svc, dest string) *DestEntry {
	t.Helper()
	s := f.service(t, svc)
	for i := range s.Dests {
		if s.Dests[i].AddrPort() == netip.MustParseAddrPort(dest) {
			return &s.Dests[i]
		}
	}
	t.Fatalf("no dest %s in %s", dest, svc)
	return nil
}

func output(t *testing.T, d Director, args string) string {
	t.Helper()
	var out, errb bytes.Buffer
	status := Run(d, strings.Fields(args), nil, &out, &errb)
	require.Equal(t, 0, status, errb.String())
	require.Empty(t, errb.String())
	return out.String()
}

const (
	web  = "TCP  192.168.1.100:80"
	dns  = "UDP  192.168.1.100:53"
	web6 = "TCP  [2001:db8::80]:443"
)

func TestSpecListing(t *testing.T) {
	d := restored(t, golden(t, "save.txt"))
	for _, c := range []struct {
		dest           string
		active, inact  uint32
		svc            string
		persistConns   uint32
		expectedWeight int32
	}{
		{"10.0.0.1:80", 12, 40, web, 0, 1},
		{"10.0.0.2:80", 25, 81, web, 0, 2},
		{"10.0.0.3:8080", 3, 7, web, 0, 0},
		{"10.0.0.1:53", 0, 17, dns, 4, 1},
		{"10.0.0.2:53", 0, 9, dns, 0, 1},
	} {
		e := d.dest(t, c.svc, c.dest)
		assert.Equal(t, c.expectedWeight, e.Weight)
		e.ActiveConns, e.InactConns, e.PersistConns = c.active, c.inact, c.persistConns
	}
	assert.Equal(t, golden(t, "list.txt"), output(t, d, "-L -n"))
	assert.Equal(t, golden(t, "save.txt"), output(t, d, "-S -n"), "-S -n is what -R read")
}

func TestSpecStatsAndRate(t *testing.T) {
	d := restored(t, "-A -t 192.168.1.100:80 -s wlc\n-a -t 192.168.1.100:80 -r 10.0.0.1:80 -m\n")
	d.service(t, web).Stats = Stats{Conns: 5321, InPkts: 102345, OutPkts: 98012, InBytes: 12345678, OutBytes: 1234567890,
		CPS: 12, InPPS: 340, OutPPS: 320, InBPS: 45000, OutBPS: 1200000}
	d.dest(t, web, "10.0.0.1:80").Stats = Stats{Conns: 2000, InPkts: 40000, OutPkts: 39000, InBytes: 4000000, OutBytes: 400000000,
		CPS: 5, InPPS: 150, OutPPS: 140, InBPS: 20000, OutBPS: 500000}
	assert.Equal(t, golden(t, "stats.txt"), output(t, d, "-L -n --stats"))
	assert.Contains(t, output(t, d, "-L -n --stats --exact"), golden(t, "stats-exact-line.txt"))
	assert.Equal(t, golden(t, "rate.txt"), output(t, d, "-L -n --rate"))
}

func TestSpecThresholds(t *testing.T) {
	d := restored(t, "-A -t 192.168.1.100:80 -s wlc\n-a -t 192.168.1.100:80 -r 10.0.0.1:80 -m -x 100 -y 50\n")
	e := d.dest(t, web, "10.0.0.1:80")
	e.ActiveConns, e.InactConns = 12, 40
	assert.Equal(t, golden(t, "thresholds.txt"), output(t, d, "-L -n --thresholds"))
}

func TestSpecPersistentConn(t *testing.T) {
	d := restored(t, "-A -u 192.168.1.100:53 -s rr -p -M 255.255.255.0\n-a -u 192.168.1.100:53 -r 10.0.0.1:53\n")
	e := d.dest(t, dns, "10.0.0.1:53")
	e.PersistConns, e.InactConns = 4, 17
	assert.Equal(t, golden(t, "persistent-conn.txt"), output(t, d, "-L -n --persistent-conn"))
}

func TestSpecTunInfo(t *testing.T) {
	d := restored(t, `-A -t 192.168.1.100:80 -s rr
-a -t 192.168.1.100:80 -r 10.0.0.1 -i
-a -t 192.168.1.100:80 -r 10.0.0.2 -i --tun-type gue --tun-port 6080
-a -t 192.168.1.100:80 -r 10.0.0.3:80 -i --tun-type gre --tun-csum
-a -t 192.168.1.100:80 -r 10.0.0.4:80
`)
	assert.Equal(t, golden(t, "tun-info.txt"), output(t, d, "-L -n --tun-info"))
	assert.Equal(t, `-A -t 192.168.1.100:80 -s rr
-a -t 192.168.1.100:80 -r 10.0.0.1:80 -i -w 1 --tun-type ipip
-a -t 192.168.1.100:80 -r 10.0.0.2:80 -i -w 1 --tun-type gue --tun-port 6080 --tun-nocsum
-a -t 192.168.1.100:80 -r 10.0.0.3:80 -i -w 1 --tun-type gre --tun-csum
-a -t 192.168.1.100:80 -r 10.0.0.4:80 -g -w 1
`, output(t, d, "-S -n"))
}

func TestSpecConnections(t *testing.T) {
	d := newFakeDirector()
	ap := netip.MustParseAddrPort
	d.conns = []ConnEntry{
		{Protocol: ProtoTCP, Client: ap("203.0.113.5:51234"), Virtual: ap("192.168.1.100:80"), Dest: ap("10.0.0.2:80"), State: "ESTABLISHED", Expires: 897 * time.Second},
		{Protocol: ProtoTCP, Client: ap("203.0.113.9:40100"), Virtual: ap("192.168.1.100:80"), Dest: ap("10.0.0.1:80"), State: "FIN_WAIT", Expires: 65500 * time.Millisecond},
		{Protocol: ProtoUDP, Client: ap("203.0.113.7:5353"), Virtual: ap("192.168.1.100:53"), Dest: ap("10.0.0.1:53"), State: "UDP", Expires: 298 * time.Second},
		{Protocol: ProtoUDP, Client: ap("203.0.113.0:0"), Virtual: ap("192.168.1.100:53"), Dest: ap("10.0.0.1:53"), State: "NONE", Expires: 355 * time.Second, Template: true},
		{Protocol: ProtoIP, Client: ap("203.0.113.5:0"), Virtual: ap("0.0.0.1:0"), Dest: ap("10.0.0.9:0"), State: "NONE", Expires: 299 * time.Second, Template: true},
	}
	assert.Equal(t, golden(t, "conns.txt"), output(t, d, "-L -n -c"))
}

func TestSpecTimeoutAndDaemon(t *testing.T) {
	d := newFakeDirector()
	assert.Equal(t, "Timeout (tcp tcpfin udp): 900 120 300\n", output(t, d, "-L --timeout"))
	output(t, d, "--start-daemon master")
	assert.Equal(t, "master sync daemon (mcast=eth0, syncid=0, maxlen=1472, group=224.0.0.81, port=8848, ttl=1)\n", output(t, d, "-L --daemon"))
}
