package engine_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/lvslab/lvslab/dataplane/engine"
	"github.com/lvslab/lvslab/internal/pingtest"
	"github.com/lvslab/lvslab/loadgen/realserver"
	"github.com/lvslab/lvslab/loadgen/wire"
	"github.com/lvslab/lvslab/scenarios"
	"github.com/lvslab/lvslab/scheduler"
	"github.com/lvslab/lvslab/scheduler/picks"
	"github.com/lvslab/lvslab/topo"
	"github.com/lvslab/lvslab/topo/agent"
)

// The test binary serves as its own agent executable.
func TestMain(m *testing.M) {
	agent.MainIfAgent()
	os.Exit(m.Run())
}

var vip = netip.MustParseAddr("192.168.1.110")

const (
	tcpPort = 80
	udpPort = 53
)

// lab is a seed lab with a running director agent and the built-in real
// servers (tcp on 80, udp on 53) on every real server.
type lab struct {
	in     *topo.Instance
	agent  *topo.Agent // the director's
	socket string
	rips   map[netip.Addr]string // real server address → node
	rules  []string
}

// startLab builds the example with scheduler sched on its service and a
// udp twin of it, starts the director (with agentFlags) and the real
// servers, and on cleanup proves that nothing is left.
func startLab(t testing.TB, example, sched string, agentFlags ...string) *lab {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to build network namespaces (run as root, or in CI)")
	}
	s, err := scenarios.LoadExample(example)
	require.NoError(t, err)
	l := s.Lab()
	udp := l.Services[0]
	udp.Protocol, udp.Port = "udp", udpPort
	udp.Dests = append([]topo.Dest(nil), udp.Dests...)
	for i := range udp.Dests {
		udp.Dests[i].Port = udpPort
	}
	l.Services = append(l.Services, udp)
	require.NoError(t, l.ApplyServices())

	runDir := t.TempDir()
	in, err := topo.Build(context.Background(), l, topo.Options{RunDir: runDir})
	require.NoError(t, err)
	inos := namespaceInodes(t, in)
	t.Cleanup(func() {
		require.NoError(t, in.Destroy())
		assertNothingLeft(t, runDir, inos)
	})

	lb := &lab{in: in, rips: map[netip.Addr]string{}}
	for _, n := range l.Nodes {
		if n.Role != topo.RealServer {
			continue
		}
		for _, kind := range []wire.Kind{wire.TCP, wire.UDP} {
			listen := netip.AddrPortFrom(netip.IPv4Unspecified(), tcpPort)
			if kind == wire.UDP {
				// A reply comes from the address the socket is bound to:
				// a DR or TUN real server answers from the VIP only when
				// it listens there (a wildcard socket would answer from
				// its own address, which the client's socket ignores).
				listen = netip.AddrPortFrom(netip.IPv4Unspecified(), udpPort)
				if len(n.Loopback) > 0 {
					listen = netip.AddrPortFrom(vip, udpPort)
				}
			}
			serve(t, in, n.Name, kind, listen)
		}
		lb.rips[n.Interfaces[0].Addresses[0].Addr()] = n.Name
	}
	lb.rules, err = engine.Rules(l, "director", []string{sched, sched})
	require.NoError(t, err)
	agents, err := startDirectors(in, []string{sched, sched}, agentFlags...)
	require.NoError(t, err)
	require.Len(t, agents, 1)
	lb.agent, lb.socket = agents[0], agents[0].Socket
	t.Cleanup(func() {
		agents[0].Stop(2 * time.Second)
		b, _ := os.ReadFile(agents[0].Log)
		t.Logf("director log:\n%s", b)
	})
	return lb
}

// serve runs a built-in real server in node, named after it.
func serve(t testing.TB, in *topo.Instance, node string, kind wire.Kind, listen netip.AddrPort) {
	t.Helper()
	var srv *realserver.Server
	require.NoError(t, in.Do(node, func() (err error) {
		srv, err = realserver.Listen(realserver.Config{Listen: listen, Kind: kind, ID: node, ResponseBytes: wire.PrefixLen})
		return err
	}))
	t.Cleanup(func() { srv.Close() })
}

// ask sends one request from the client to the VIP over a new connection
// (tcp) or a new socket (udp) and returns the name of the real server that
// answered.
func (lb *lab) ask(t testing.TB, network string, port uint16, seq uint32) string {
	t.Helper()
	return lb.askAt(t, network, netip.AddrPortFrom(vip, port), seq)
}

// askAt is ask to any virtual address.
func (lb *lab) askAt(t testing.TB, network string, to netip.AddrPort, seq uint32) string {
	t.Helper()
	var c net.Conn
	require.NoError(t, lb.in.Do("client", func() (err error) {
		c, err = net.DialTimeout(network, to.String(), 5*time.Second)
		return err
	}))
	defer c.Close()
	require.NoError(t, c.SetDeadline(time.Now().Add(5*time.Second)))
	req := make([]byte, wire.RequestLen)
	wire.PutRequest(req, wire.RequestLen, 0, seq)
	_, err := c.Write(req)
	require.NoError(t, err)
	resp := make([]byte, 2048)
	n, err := io.ReadAtLeast(c, resp, wire.PrefixLen)
	require.NoError(t, err, "request %d over %s", seq, network)
	p := wire.Prefix(resp[:n])
	require.True(t, p.Valid())
	assert.Equal(t, seq, p.Seq())
	return string(p.ID())
}

// ipvsadm runs ipvsadm in the director over its control socket.
func (lb *lab) ipvsadm(t testing.TB, args ...string) string {
	t.Helper()
	var out, errb bytes.Buffer
	code, err := engine.Ipvsadm(lb.socket, args, nil, &out, &errb)
	require.NoError(t, err)
	require.Equal(t, 0, code, "ipvsadm %v: %s", args, errb.String())
	return out.String()
}

// expected is what scheduler/picks (lvslab sched) gives for the service's
// configuration: n picks, as node names.
func (lb *lab) expected(t testing.TB, sched string, n int, port uint16) []string {
	t.Helper()
	var dests []picks.DestSpec
	for _, r := range lb.rules {
		f := strings.Fields(r)
		if f[0] != "-a" || !strings.HasSuffix(f[2], ":"+strconv.Itoa(int(port))) {
			continue
		}
		ap := netip.MustParseAddrPort(f[4])
		w, err := strconv.Atoi(f[7])
		require.NoError(t, err)
		dests = append(dests, picks.DestSpec{Addr: ap, Weight: int32(w)})
	}
	res, err := picks.Run(picks.Config{Scheduler: sched, Dests: dests, Picks: n, Conn: picks.Inactive})
	require.NoError(t, err)
	var names []string
	for _, p := range res.Picks {
		names = append(names, lb.rips[p.Dest.Addr()])
	}
	return names
}

// destRows parses the real server rows of an ipvsadm listing of one
// service: address → the row's fields after the address.
func destRows(listing, service string) map[string][]string {
	rows := map[string][]string{}
	in := false
	for _, line := range strings.Split(listing, "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) >= 2 && (f[0] == "TCP" || f[0] == "UDP"):
			in = f[0]+" "+f[1] == service
		case in && len(f) >= 2 && f[0] == "->":
			rows[f[1]] = f[2:]
		}
	}
	return rows
}

func testMode(t *testing.T, example, sched string, agentFlags ...string) {
	lb := startLab(t, example, sched, agentFlags...)
	const n = 9
	for _, c := range []struct {
		network string
		port    uint16
		service string
	}{
		{"tcp", tcpPort, "TCP " + netip.AddrPortFrom(vip, tcpPort).String()},
		{"udp", udpPort, "UDP " + netip.AddrPortFrom(vip, udpPort).String()},
	} {
		var got []string
		for i := range n {
			got = append(got, lb.ask(t, c.network, c.port, uint32(i+1)))
		}
		want := lb.expected(t, sched, n, c.port)
		assert.Equal(t, want, got, "%s: the real servers answering, in order, are the scheduler's picks", c.network)

		// Every connection is counted on the real server that served it;
		// none is still active (tcp closed, udp never is).
		perNode := map[string]int{}
		for _, name := range got {
			perNode[name]++
		}
		// The counters are the estimator's, folded every 2 s as in the
		// kernel; the connection counts are live.
		var listing, stats string
		require.Eventually(t, func() bool {
			listing, stats = lb.ipvsadm(t, "-L", "-n"), lb.ipvsadm(t, "-L", "-n", "--stats")
			rows, srows := destRows(listing, c.service), destRows(stats, c.service)
			if len(rows) != 3 || len(srows) != 3 {
				return false
			}
			for addr, row := range rows {
				node := lb.rips[netip.MustParseAddrPort(addr).Addr()]
				want := strconv.Itoa(perNode[node])
				if row[2] != "0" || row[3] != want || srows[addr][0] != want {
					return false
				}
			}
			return true
		}, 5*time.Second, 100*time.Millisecond, "ActiveConn 0, InActConn and Conns = connections per real server")
		t.Logf("%s\n%s", listing, stats)
	}

	// Persistence: every new connection of the client goes to one server.
	lb.ipvsadm(t, "-E", "-t", netip.AddrPortFrom(vip, tcpPort).String(), "-s", sched, "-p", "60")
	first := lb.ask(t, "tcp", tcpPort, 100)
	for i := range 4 {
		assert.Equal(t, first, lb.ask(t, "tcp", tcpPort, uint32(101+i)), "a persistent service keeps the client on %s", first)
	}
	assert.Contains(t, lb.ipvsadm(t, "-L", "-n"), "persistent 60")

	// The director's own stack neither answered VIP traffic (no RST, no
	// ICMP) nor forwarded anything: the engine alone did.
	snmp, err := lb.in.Output("director", "cat", "/proc/net/snmp")
	require.NoError(t, err)
	assert.Equal(t, "0", snmpValue(t, string(snmp), "Tcp", "OutRsts"), "RSTs the director's kernel sent")
	assert.Equal(t, "0", snmpValue(t, string(snmp), "Ip", "ForwDatagrams"), "packets the director's kernel forwarded")
	assert.Equal(t, "0", snmpValue(t, string(snmp), "Icmp", "OutDestUnreachs"), "ICMP unreachables the director's kernel sent")
}

// snmpValue reads one counter of /proc/net/snmp (a names line followed by
// a values line per protocol).
func snmpValue(t testing.TB, snmp, proto, name string) string {
	lines := strings.Split(snmp, "\n")
	for i := 0; i+1 < len(lines); i++ {
		names, values := strings.Fields(lines[i]), strings.Fields(lines[i+1])
		if len(names) == 0 || names[0] != proto+":" || len(values) != len(names) {
			continue
		}
		for k, n := range names {
			if n == name {
				return values[k]
			}
		}
	}
	t.Fatalf("no %s %s in /proc/net/snmp", proto, name)
	return ""
}

// TestPortZero is the classic documentation's all-ports example as written:
// -A -t VIP:0 -s wrr -p 1800 with -a … -g -w 1. A client's connections to
// any port stay on one real server (the port-0 template), the service's
// port is the client's.
func TestPortZero(t *testing.T) {
	lb := startLab(t, "dr", "rr")
	vip0 := netip.AddrPortFrom(vip, 0).String()
	lb.ipvsadm(t, "-A", "-t", vip0, "-s", "wrr", "-p", "1800")
	for rip, node := range lb.rips {
		lb.ipvsadm(t, "-a", "-t", vip0, "-r", rip.String(), "-g", "-w", "1")
		for _, port := range []uint16{8080, 8443} {
			serve(t, lb.in, node, wire.TCP, netip.AddrPortFrom(netip.IPv4Unspecified(), port))
		}
	}
	first := lb.ask(t, "tcp", 8080, 1)
	for i, port := range []uint16{8443, 8080, 8443} {
		assert.Equal(t, first, lb.ask(t, "tcp", port, uint32(i+2)), "port %d: the client stays on %s", port, first)
	}
	// Port 80 has a service of its own, which schedules by itself.
	lb.ask(t, "tcp", tcpPort, 9)
	listing := lb.ipvsadm(t, "-L", "-n")
	assert.Contains(t, listing, "TCP  192.168.1.110:0 wrr persistent 1800\n")
	conns := lb.ipvsadm(t, "-L", "-n", "-c")
	assert.Contains(t, conns, "TCP 29:", "the port-0 template (30 min)")
	assert.Contains(t, conns, "192.168.1.254:0    192.168.1.110:0")
}

// TestEveryScheduler runs every scheduler in the NAT lab, each on a
// service of its own (so every one starts from empty counters): the real
// servers that answer the client's connections, in order, are the ones
// scheduler/picks (lvslab sched) picks for the same flows, with every
// earlier connection closed (InActConn).
func TestEveryScheduler(t *testing.T) {
	lb := startLab(t, "nat", "wlc")
	var dests []picks.DestSpec
	for _, r := range lb.rules {
		if f := strings.Fields(r); f[0] == "-a" && strings.HasSuffix(f[2], ":80") {
			w, err := strconv.Atoi(f[7])
			require.NoError(t, err)
			dests = append(dests, picks.DestSpec{Addr: netip.MustParseAddrPort(f[4]), Weight: int32(w)})
		}
	}
	require.Len(t, dests, 3)
	client := netip.MustParseAddr("192.168.1.254")
	const n = 6
	for i, name := range scheduler.Names {
		port := uint16(8000 + i)
		vs := netip.AddrPortFrom(vip, port).String()
		lb.ipvsadm(t, "-A", "-t", vs, "-s", name)
		for _, d := range dests {
			lb.ipvsadm(t, "-a", "-t", vs, "-r", d.Addr.String(), "-m", "-w", strconv.Itoa(int(d.Weight)))
		}
		res, err := picks.Run(picks.Config{Scheduler: name, Dests: dests, Picks: n, Conn: picks.Inactive,
			Flows: []picks.FlowSpec{{Src: client, Dst: vip, DstPort: port}}})
		require.NoError(t, err)
		var want, got []string
		for k, p := range res.Picks {
			want = append(want, lb.rips[p.Dest.Addr()])
			got = append(got, lb.ask(t, "tcp", port, uint32(k)))
		}
		assert.Equal(t, want, got, "scheduler %s", name)
	}
}

// TestICMP checks the ICMP the director sends and relays in the NAT lab:
// a service without real servers answers port unreachable (the client's
// connect is refused, not left to time out), and a real server's port
// unreachable for a UDP datagram reaches the client rewritten to quote the
// VIP, so the client's socket sees it.
func TestICMP(t *testing.T) {
	lb := startLab(t, "nat", "rr")
	lb.ipvsadm(t, "-A", "-t", netip.AddrPortFrom(vip, 81).String(), "-s", "rr")
	err := lb.in.Do("client", func() error {
		c, err := net.DialTimeout("tcp", netip.AddrPortFrom(vip, 81).String(), 5*time.Second)
		if err == nil {
			c.Close()
		}
		return err
	})
	require.ErrorIs(t, err, unix.ECONNREFUSED, "the director's port unreachable")

	closed := netip.AddrPortFrom(vip, 54).String()
	lb.ipvsadm(t, "-A", "-u", closed, "-s", "rr")
	lb.ipvsadm(t, "-a", "-u", closed, "-r", "10.1.1.2:54", "-m")
	var c net.Conn
	require.NoError(t, lb.in.Do("client", func() (err error) {
		c, err = net.Dial("udp", closed)
		return err
	}))
	defer c.Close()
	require.NoError(t, c.SetDeadline(time.Now().Add(5*time.Second)))
	_, err = c.Write([]byte("anyone?"))
	require.NoError(t, err)
	_, err = c.Read(make([]byte, 64))
	require.ErrorIs(t, err, unix.ECONNREFUSED, "the real server's port unreachable, relayed as from the VIP")
}

// TestTunnelMTU is the MTU rule of TUN: full-size DF segments no longer
// fit once wrapped in IPIP, so the director answers fragmentation needed
// with MTU 1480, the client's stack learns it, and the transfer completes.
func TestTunnelMTU(t *testing.T) {
	lb := startLab(t, "tun", "rr")
	vs := netip.AddrPortFrom(vip, 9000).String()
	lb.ipvsadm(t, "-A", "-t", vs, "-s", "rr")
	for rip, node := range lb.rips {
		sink(t, lb, node, 9000)
		lb.ipvsadm(t, "-a", "-t", vs, "-r", rip.String(), "-i")
	}
	var c net.Conn
	require.NoError(t, lb.in.Do("client", func() (err error) {
		c, err = net.DialTimeout("tcp", vs, 5*time.Second)
		return err
	}))
	require.NoError(t, c.SetDeadline(time.Now().Add(10*time.Second)))
	_, err := c.Write(make([]byte, 1<<20))
	require.NoError(t, err)
	require.NoError(t, c.(*net.TCPConn).CloseWrite())
	_, err = io.Copy(io.Discard, c)
	require.NoError(t, err, "the transfer completes")
	c.Close()
	route, err := lb.in.Output("client", "ip", "-4", "route", "get", vip.String())
	require.NoError(t, err)
	assert.Contains(t, string(route), "mtu 1480", "the client learnt the tunnel's MTU")
}

// TestVIPHandover: the kernel's drop sets follow the services. Once a
// service is deleted, the director's own stack answers its port (a RST: the
// client's connect is refused at once), as a director without that service
// does, even while another service keeps the address; a new service takes
// its port back.
func TestVIPHandover(t *testing.T) {
	lb := startLab(t, "nat", "rr")
	dropSet := func() string {
		out, err := lb.in.Output("director", "nft", "list", "set", "netdev", topo.DropTable, topo.DropServices)
		require.NoError(t, err)
		return string(out)
	}
	require.Contains(t, dropSet(), "192.168.1.110 . tcp . 80")
	require.Contains(t, dropSet(), "192.168.1.110 . udp . 53")
	lb.ipvsadm(t, "-D", "-t", netip.AddrPortFrom(vip, tcpPort).String())
	assert.NotContains(t, dropSet(), "tcp . 80")
	assert.Contains(t, dropSet(), "192.168.1.110 . udp . 53", "the udp service keeps its port")
	require.ErrorIs(t, lb.dial(tcpPort), unix.ECONNREFUSED, "the director's kernel answers the deleted service's port")

	lb.ipvsadm(t, "-A", "-t", netip.AddrPortFrom(vip, 8080).String(), "-s", "rr")
	lb.ipvsadm(t, "-a", "-t", netip.AddrPortFrom(vip, 8080).String(), "-r", "10.1.1.2:80", "-m")
	assert.Contains(t, dropSet(), "192.168.1.110 . tcp . 8080")
	assert.Equal(t, "rs1", lb.ask(t, "tcp", 8080, 1))
	lb.ipvsadm(t, "-E", "-t", netip.AddrPortFrom(vip, 8080).String(), "-s", "wrr")
	assert.Contains(t, dropSet(), "192.168.1.110 . tcp . 8080", "an edit keeps the service's key")

	lb.ipvsadm(t, "-A", "-t", netip.AddrPortFrom(vip, 0).String(), "-s", "rr", "-p", "60")
	out, err := lb.in.Output("director", "nft", "list", "set", "netdev", topo.DropTable, topo.DropAllPorts)
	require.NoError(t, err)
	assert.Contains(t, string(out), "elements = { 192.168.1.110 . tcp }", "a port-0 service takes every tcp port")
}

// TestKernelAnswersTheRest: with the director running, what no virtual
// service takes is the director's own stack's, as on a real director: a
// ping to the VIP gets an echo reply, a SYN to a port without a service a
// RST. The engine answers neither itself.
func TestKernelAnswersTheRest(t *testing.T) {
	lb := startLab(t, "nat", "rr")
	require.ErrorIs(t, lb.dial(9), unix.ECONNREFUSED, "a port without a service")
	require.NoError(t, lb.in.Do("client", func() error { return pingtest.Echo(vip, 6) }), "a ping to the VIP")
	var nodes []string
	for _, n := range lb.rips {
		nodes = append(nodes, n)
	}
	assert.Contains(t, nodes, lb.ask(t, "tcp", tcpPort, 1), "the service's port is still the dataplane's")

	snmp, err := lb.in.Output("director", "cat", "/proc/net/snmp")
	require.NoError(t, err)
	assert.Equal(t, "1", snmpValue(t, string(snmp), "Tcp", "OutRsts"), "the RST for port 9 only")
	assert.Equal(t, "1", snmpValue(t, string(snmp), "Icmp", "OutEchoReps"), "the director's stack answered the ping")
}

// dial connects from the client to the VIP's tcp port.
func (lb *lab) dial(port uint16) error {
	return lb.in.Do("client", func() error {
		c, err := net.DialTimeout("tcp", netip.AddrPortFrom(vip, port).String(), 5*time.Second)
		if err == nil {
			c.Close()
		}
		return err
	})
}

// TestOnePacket is one-packet scheduling (-o) in the DR lab: every
// datagram of one client socket is scheduled on its own (rr: each real
// server in turn) and leaves no connection behind; without it the socket's
// datagrams stay on one real server.
func TestOnePacket(t *testing.T) {
	lb := startLab(t, "dr", "rr")
	vs := netip.AddrPortFrom(vip, udpPort).String()
	exchange := func() []string {
		var c net.Conn
		require.NoError(t, lb.in.Do("client", func() (err error) {
			c, err = net.Dial("udp", vs)
			return err
		}))
		defer c.Close()
		require.NoError(t, c.SetDeadline(time.Now().Add(5*time.Second)))
		var names []string
		for i := range 3 {
			req := make([]byte, wire.RequestLen)
			wire.PutRequest(req, wire.RequestLen, 0, uint32(i))
			_, err := c.Write(req)
			require.NoError(t, err)
			resp := make([]byte, 2048)
			n, err := c.Read(resp)
			require.NoError(t, err)
			names = append(names, string(wire.Prefix(resp[:n]).ID()))
		}
		return names
	}
	same := exchange()
	assert.Equal(t, []string{same[0], same[0], same[0]}, same, "one connection, one real server")

	lb.ipvsadm(t, "-E", "-u", vs, "-s", "rr", "-o")
	spread := exchange()
	assert.ElementsMatch(t, []string{"rs1", "rs2", "rs3"}, spread, "each datagram scheduled on its own")
	assert.Equal(t, 1, strings.Count(lb.ipvsadm(t, "-L", "-n", "-c"), "\nUDP "),
		"only the first socket's connection: one-packet datagrams leave none")
}

func TestNAT(t *testing.T) { testMode(t, "nat", "wrr") }
func TestDR(t *testing.T)  { testMode(t, "dr", "rr") }
func TestTUN(t *testing.T) { testMode(t, "tun", "wrr") }

// TestTwoWorkers runs each forwarding method with two packet workers in
// fanout groups steered by the client (packetio.Steering).
func TestTwoWorkers(t *testing.T) {
	for _, example := range []string{"nat", "dr", "tun"} {
		t.Run(example, func(t *testing.T) { testMode(t, example, "rr", "--workers", "2") })
	}
}

func namespaceInodes(t testing.TB, in *topo.Instance) []uint64 {
	var inos []uint64
	for _, n := range in.Lab.Nodes {
		h, err := in.NetNS(n.Name)
		require.NoError(t, err)
		var st unix.Stat_t
		require.NoError(t, unix.Fstat(int(h.Fd()), &st))
		inos = append(inos, st.Ino)
	}
	return inos
}

// assertNothingLeft checks that the lab left no run folder, no pinned
// namespace and no process in any of its namespaces.
func assertNothingLeft(t testing.TB, runDir string, inos []uint64) {
	t.Helper()
	labs, err := topo.List(runDir)
	require.NoError(t, err)
	assert.Empty(t, labs, "no lab left in the run folder")
	mounts, err := os.ReadFile("/proc/self/mountinfo")
	require.NoError(t, err)
	assert.NotContains(t, string(mounts), runDir, "no pinned namespace left")
	procs, _ := os.ReadDir("/proc")
	for _, p := range procs {
		link, err := os.Readlink(filepath.Join("/proc", p.Name(), "ns/net"))
		if err != nil {
			continue
		}
		for _, ino := range inos {
			assert.NotEqual(t, fmt.Sprintf("net:[%d]", ino), link, "process %s still in a lab namespace", p.Name())
		}
	}
}

// startDirectors starts a director agent on every director node of the
// lab (what `lvslab up` and `lvslab run` do through scenarios.StartDirector), with the lab's services (schedulers as for Rules) and the agent
// flags in extra (--workers N, --batch N).
func startDirectors(in *topo.Instance, schedulers []string, extra ...string) ([]*topo.Agent, error) {
	var agents []*topo.Agent
	for _, n := range in.Lab.Nodes {
		if n.Role != topo.Director {
			continue
		}
		rules, err := engine.Rules(in.Lab, n.Name, schedulers)
		if err != nil {
			return agents, err
		}
		args := append([]string(nil), extra...)
		for _, r := range rules {
			args = append(args, "--rule", r)
		}
		a, err := in.StartAgent(n.Name, engine.AgentKind, args...)
		if err != nil {
			return agents, err
		}
		agents = append(agents, a)
	}
	return agents, nil
}
