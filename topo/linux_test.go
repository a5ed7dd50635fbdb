package topo_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/mdlayher/packet"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/lvslab/lvslab/scenarios"
	"github.com/lvslab/lvslab/topo"
	"github.com/lvslab/lvslab/topo/agent"
)

// The test binary serves as its own agent executable.
func TestMain(m *testing.M) {
	agent.MainIfAgent()
	if dir := os.Getenv("LVSLAB_TEST_HOLD"); dir != "" {
		holdLab(dir)
	}
	os.Exit(m.Run())
}

// holdLab is a runner that builds the TUN lab unpinned, says so, and waits
// to be killed: a go test suite that crashes.
func holdLab(runDir string) {
	s, err := scenarios.LoadExample("tun")
	if err == nil {
		_, err = topo.Build(context.Background(), s.Lab(), topo.Options{RunDir: runDir})
	}
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	fmt.Println("up")
	select {}
}

var (
	vip    = netip.MustParseAddr("192.168.1.110")
	client = netip.MustParseAddr("192.168.1.254")
)

// requireNamespaces skips a test that cannot create network namespaces.
func requireNamespaces(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to build network namespaces (run as root, or in CI)")
	}
}

// rootSnapshot is what the root namespace must not gain while a lab runs.
func rootSnapshot(t testing.TB) string {
	t.Helper()
	routes, err := netlink.RouteListFiltered(netlink.FAMILY_ALL, &netlink.Route{Table: unix.RT_TABLE_UNSPEC}, netlink.RT_FILTER_TABLE)
	require.NoError(t, err)
	links, err := netlink.LinkList()
	require.NoError(t, err)
	var b strings.Builder
	for _, r := range routes {
		fmt.Fprintf(&b, "route %s\n", r)
	}
	for _, l := range links {
		fmt.Fprintf(&b, "link %s\n", l.Attrs().Name)
	}
	return b.String()
}

// build builds an example lab and registers its teardown, after which it
// proves nothing is left: no run folder, no process in a lab namespace, no
// mount, and the root namespace as it was.
func build(t *testing.T, example string) *topo.Instance {
	t.Helper()
	requireNamespaces(t)
	s, err := scenarios.LoadExample(example)
	require.NoError(t, err)
	before := rootSnapshot(t)
	runDir := t.TempDir()
	in, err := topo.Build(context.Background(), s.Lab(), topo.Options{RunDir: runDir})
	require.NoError(t, err)
	assert.Equal(t, before, rootSnapshot(t), "the root namespace gains no route or link")
	inos := namespaceInodes(t, in)
	requireLinksReady(t, in)
	t.Cleanup(func() {
		require.NoError(t, in.Destroy())
		assertNothingLeft(t, runDir, inos)
		assert.Equal(t, before, rootSnapshot(t))
	})
	return in
}

// requireLinksReady proves a built lab's links carry frames at once: every
// interface of every node is operationally up with its queueing discipline
// attached (a veth end keeps "noop", which drops every frame, until the
// kernel's link watcher runs), so a user's first request is not lost.
func requireLinksReady(t *testing.T, in *topo.Instance) {
	t.Helper()
	for _, n := range in.Lab.Nodes {
		for j := range n.Interfaces {
			out, err := in.Output(n.Name, "ip", "-o", "link", "show", "dev", topo.IfName(j))
			require.NoError(t, err, "%s", out)
			assert.Contains(t, string(out), " state UP ", "%s: %s", n.Name, out)
			assert.NotContains(t, string(out), " qdisc noop ", "%s: %s", n.Name, out)
		}
	}
}

// namespaces identifies a lab's namespaces by inode and cookie (inodes
// alone are reused by the kernel for other programs' namespaces).
func namespaceInodes(t testing.TB, in *topo.Instance) map[uint64]uint64 {
	owned := map[uint64]uint64{}
	for _, n := range in.Lab.Nodes {
		h, err := in.NetNS(n.Name)
		require.NoError(t, err)
		var st unix.Stat_t
		require.NoError(t, unix.Fstat(int(h.Fd()), &st))
		c, err := topo.NetNSCookie(h)
		require.NoError(t, err)
		owned[st.Ino] = c
	}
	return owned
}

func assertNothingLeft(t testing.TB, runDir string, owned map[uint64]uint64) {
	t.Helper()
	labs, err := topo.List(runDir)
	require.NoError(t, err)
	assert.Empty(t, labs, "no lab left in the run folder")
	entries, _ := os.ReadDir(runDir)
	assert.Empty(t, entries)
	mounts, err := os.ReadFile("/proc/self/mountinfo")
	require.NoError(t, err)
	assert.NotContains(t, string(mounts), runDir, "no pinned namespace left")
	procs, _ := os.ReadDir("/proc")
	for _, p := range procs {
		f, err := os.Open(filepath.Join("/proc", p.Name(), "ns/net"))
		if err != nil {
			continue
		}
		var st unix.Stat_t
		if unix.Fstat(int(f.Fd()), &st) == nil {
			if cookie, ours := owned[st.Ino]; ours {
				c, err := topo.NetNSCookie(f)
				if err == nil && c == cookie {
					cmdline, _ := os.ReadFile(filepath.Join("/proc", p.Name(), "cmdline"))
					t.Errorf("process %s (%q) is still in a lab namespace", p.Name(), cmdline)
				}
			}
		}
		f.Close()
	}
}

// listenUDP opens a UDP socket inside node; the socket stays in that
// namespace whichever thread uses it later.
func listenUDP(t *testing.T, in *topo.Instance, node string, at netip.AddrPort) *net.UDPConn {
	t.Helper()
	var c *net.UDPConn
	require.NoError(t, in.Do(node, func() (err error) {
		c, err = net.ListenUDP("udp4", net.UDPAddrFromAddrPort(at))
		return err
	}))
	t.Cleanup(func() { c.Close() })
	return c
}

func sendUDP(t *testing.T, in *topo.Instance, node string, to netip.AddrPort, payload string) {
	t.Helper()
	require.NoError(t, in.Do(node, func() error {
		c, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(to))
		if err != nil {
			return err
		}
		defer c.Close()
		_, err = c.Write([]byte(payload))
		return err
	}))
}

// receive reads one datagram, failing the test after a generous deadline
// (a liveness bound, not a timing assertion).
func receive(t *testing.T, c *net.UDPConn) (string, netip.AddrPort) {
	t.Helper()
	require.NoError(t, c.SetReadDeadline(time.Now().Add(10*time.Second)))
	b := make([]byte, 2048)
	n, from, err := c.ReadFromUDPAddrPort(b)
	require.NoError(t, err)
	return string(b[:n]), from
}

func macOf(t *testing.T, in *topo.Instance, node, ifname string) net.HardwareAddr {
	t.Helper()
	var mac net.HardwareAddr
	require.NoError(t, in.Do(node, func() error {
		ifi, err := net.InterfaceByName(ifname)
		if err == nil {
			mac = ifi.HardwareAddr
		}
		return err
	}))
	return mac
}

func serialize(t *testing.T, ls ...gopacket.SerializableLayer) []byte {
	t.Helper()
	buf := gopacket.NewSerializeBuffer()
	require.NoError(t, gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...))
	return buf.Bytes()
}

// udpTo builds client → VIP:9999 as the director receives it.
func udpTo(t *testing.T, eth *layers.Ethernet, payload string) []byte {
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: client.AsSlice(), DstIP: vip.AsSlice()}
	udp := &layers.UDP{SrcPort: 40000, DstPort: 9999}
	require.NoError(t, udp.SetNetworkLayerForChecksum(ip))
	if eth == nil {
		return serialize(t, ip, udp, gopacket.Payload(payload))
	}
	return serialize(t, eth, ip, udp, gopacket.Payload(payload))
}

func TestClassicNAT(t *testing.T) {
	in := build(t, "nat")

	t.Run("real servers route back through the director", func(t *testing.T) {
		for _, rs := range []string{"rs1", "rs2", "rs3"} {
			require.NoError(t, in.Do(rs, func() error {
				routes, err := netlink.RouteGet(client.AsSlice())
				require.NoError(t, err)
				require.Len(t, routes, 1)
				assert.Equal(t, "10.1.1.1", routes[0].Gw.String(), rs)
				return nil
			}))
		}
		dip := listenUDP(t, in, "director", netip.MustParseAddrPort("10.1.1.1:7"))
		sendUDP(t, in, "rs2", netip.MustParseAddrPort("10.1.1.1:7"), "from rs2")
		msg, from := receive(t, dip)
		assert.Equal(t, "from rs2", msg)
		assert.Equal(t, "10.1.1.3", from.Addr().String())
	})
	t.Run("director forwards nothing itself and holds the VIP", func(t *testing.T) {
		out, err := in.Output("director", "cat", "/proc/sys/net/ipv4/ip_forward")
		require.NoError(t, err)
		assert.Equal(t, "0\n", string(out))
		out, err = in.Output("director", "ip", "-4", "-o", "addr", "show", "dev", "eth0")
		require.NoError(t, err)
		assert.Contains(t, string(out), "192.168.1.110/24")
	})
	t.Run("the director's kernel never sees VIP traffic but its taps do", func(t *testing.T) {
		// A socket bound to the VIP would get the datagram if the kernel
		// handled it; the datagram to the DIP sent after it proves it
		// has crossed the wire.
		onVIP := listenUDP(t, in, "director", netip.AddrPortFrom(vip, 9999))
		onDIP := listenUDP(t, in, "director", netip.MustParseAddrPort("192.168.1.1:9999"))
		var tap *packet.Conn
		require.NoError(t, in.Do("director", func() error {
			ifi, err := net.InterfaceByName("eth0")
			if err != nil {
				return err
			}
			tap, err = packet.Listen(ifi, packet.Raw, unix.ETH_P_ALL, nil)
			return err
		}))
		defer tap.Close()
		sendUDP(t, in, "client", netip.AddrPortFrom(vip, 9999), "to the VIP")
		sendUDP(t, in, "client", netip.MustParseAddrPort("192.168.1.1:9999"), "to the DIP")
		msg, _ := receive(t, onDIP)
		assert.Equal(t, "to the DIP", msg)
		require.NoError(t, onVIP.SetReadDeadline(time.Now()))
		_, _, err := onVIP.ReadFromUDPAddrPort(make([]byte, 64))
		assert.ErrorIs(t, err, os.ErrDeadlineExceeded, "the director's kernel must not deliver VIP traffic")

		require.NoError(t, tap.SetDeadline(time.Now().Add(10*time.Second)))
		b := make([]byte, 2048)
		for {
			n, _, err := tap.ReadFrom(b)
			require.NoError(t, err, "the tap sees the VIP datagram")
			p := gopacket.NewPacket(b[:n], layers.LayerTypeEthernet, gopacket.Default)
			if ip, ok := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4); ok && ip.DstIP.Equal(vip.AsSlice()) {
				assert.Equal(t, "to the VIP", string(p.ApplicationLayer().Payload()))
				break
			}
		}
	})
}

// arpReplies asks, from the client, who has addr, and returns the sender MAC
// of every reply until a reply from want arrived (or the deadline).
func arpReplies(t *testing.T, in *topo.Instance, addr netip.Addr, want net.HardwareAddr) []string {
	t.Helper()
	var replies []string
	require.NoError(t, in.Do("client", func() error {
		ifi, err := net.InterfaceByName("eth0")
		if err != nil {
			return err
		}
		c, err := packet.Listen(ifi, packet.Raw, unix.ETH_P_ARP, nil)
		if err != nil {
			return err
		}
		defer c.Close()
		req := serialize(t,
			&layers.Ethernet{SrcMAC: ifi.HardwareAddr, DstMAC: layers.EthernetBroadcast, EthernetType: layers.EthernetTypeARP},
			&layers.ARP{AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4, HwAddressSize: 6, ProtAddressSize: 4,
				Operation: layers.ARPRequest, SourceHwAddress: ifi.HardwareAddr, SourceProtAddress: client.AsSlice(),
				DstHwAddress: make([]byte, 6), DstProtAddress: addr.AsSlice()})
		if _, err := c.WriteTo(req, &packet.Addr{HardwareAddr: layers.EthernetBroadcast}); err != nil {
			return err
		}
		// One request, no retry: Build returns only when every link carries
		// frames, so the first request must be answered. A second request
		// after the expected reply flushes any straggler through the same
		// queue before we stop listening.
		sawWant := false
		b := make([]byte, 1500)
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		for {
			n, _, err := c.ReadFrom(b)
			if err != nil {
				return fmt.Errorf("replies so far %v: %w", replies, err)
			}
			p := gopacket.NewPacket(b[:n], layers.LayerTypeEthernet, gopacket.Default)
			arp, ok := p.Layer(layers.LayerTypeARP).(*layers.ARP)
			if !ok || arp.Operation != layers.ARPReply {
				continue
			}
			sender := net.HardwareAddr(arp.SourceHwAddress).String()
			replies = append(replies, sender)
			if sender == want.String() {
				if sawWant {
					return nil
				}
				sawWant = true
				if _, err := c.WriteTo(req, &packet.Addr{HardwareAddr: layers.EthernetBroadcast}); err != nil {
					return err
				}
			}
		}
	}))
	return replies
}

func TestClassicDR(t *testing.T) {
	in := build(t, "dr")
	director := macOf(t, in, "director", "eth0")

	t.Run("only the director answers ARP for the VIP", func(t *testing.T) {
		replies := arpReplies(t, in, vip, director)
		require.GreaterOrEqual(t, len(replies), 2)
		for _, r := range replies {
			assert.Equal(t, director.String(), r, "a real server answered ARP for the VIP")
		}
	})
	t.Run("real servers still answer ARP for their own address", func(t *testing.T) {
		rs2 := macOf(t, in, "rs2", "eth0")
		for _, r := range arpReplies(t, in, netip.MustParseAddr("192.168.1.3"), rs2) {
			assert.Equal(t, rs2.String(), r)
		}
	})
	t.Run("real servers accept a frame for the VIP sent to their MAC", func(t *testing.T) {
		for _, rs := range []string{"rs1", "rs2", "rs3"} {
			sock := listenUDP(t, in, rs, netip.AddrPortFrom(vip, 9999))
			mac := macOf(t, in, rs, "eth0")
			// What a DR director does: the IP packet untouched, the
			// destination MAC rewritten to the real server's.
			require.NoError(t, in.Do("director", func() error {
				ifi, err := net.InterfaceByName("eth0")
				if err != nil {
					return err
				}
				c, err := packet.Listen(ifi, packet.Raw, unix.ETH_P_IP, nil)
				if err != nil {
					return err
				}
				defer c.Close()
				frame := udpTo(t, &layers.Ethernet{SrcMAC: ifi.HardwareAddr, DstMAC: mac, EthernetType: layers.EthernetTypeIPv4}, "dr to "+rs)
				_, err = c.WriteTo(frame, &packet.Addr{HardwareAddr: mac})
				return err
			}))
			msg, from := receive(t, sock)
			assert.Equal(t, "dr to "+rs, msg)
			assert.Equal(t, client, from.Addr())
			sock.Close()
		}
	})
}

func TestClassicTUN(t *testing.T) {
	in := build(t, "tun")
	t.Logf("features: %s (decapsulation: %s)", in.Features, in.Features.Decap())
	if !in.Features.IPIP {
		require.Len(t, in.Agents(), 3, "a userspace decapsulator in every TUN real server")
	}
	for i, rs := range []string{"rs1", "rs2", "rs3"} {
		sock := listenUDP(t, in, rs, netip.AddrPortFrom(vip, 9999))
		rip := netip.AddrFrom4([4]byte{192, 168, 1, byte(2 + i)})
		// What a TUN director does: the client's packet, whole, inside an
		// outer IPv4 header to the real server's address.
		require.NoError(t, in.Do("director", func() error {
			fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW, unix.IPPROTO_IPIP)
			if err != nil {
				return err
			}
			defer unix.Close(fd)
			return unix.Sendto(fd, udpTo(t, nil, "tun to "+rs), 0, &unix.SockaddrInet4{Addr: rip.As4()})
		}))
		msg, from := receive(t, sock)
		assert.Equal(t, "tun to "+rs, msg)
		assert.Equal(t, client, from.Addr(), "the inner packet reaches the VIP untouched")
	}
}

func TestACanceledBuildLeavesNothing(t *testing.T) {
	requireNamespaces(t)
	s, err := scenarios.LoadExample("tun")
	require.NoError(t, err)
	before := rootSnapshot(t)
	runDir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = topo.Build(ctx, s.Lab(), topo.Options{RunDir: runDir, Pin: true})
	require.ErrorIs(t, err, context.Canceled)
	assertNothingLeft(t, runDir, nil)
	assert.Equal(t, before, rootSnapshot(t))
}

func TestAnInvalidLabBuildsNothing(t *testing.T) {
	requireNamespaces(t)
	runDir := t.TempDir()
	lab := &topo.Lab{Name: "bad", Nodes: []topo.Node{{Name: "x", Role: topo.Client}}}
	_, err := topo.Build(context.Background(), lab, topo.Options{RunDir: runDir})
	require.Error(t, err)
	assert.Contains(t, err.Error(), `node "x": has no interfaces`)
	entries, _ := os.ReadDir(runDir)
	assert.Empty(t, entries)
}

// TestTUNThroughARouter puts a TUN real server "in another country": the
// director reaches it only through a router node, and the real server
// answers the client directly through that router too.
func TestTUNThroughARouter(t *testing.T) {
	requireNamespaces(t)
	s, err := scenarios.Parse("routed.yaml", []byte(`
name: routed-tun
networks:
  - {name: home, subnet: 192.168.1.0/24}
  - {name: abroad, subnet: 172.16.5.0/24, mtu: 1400}
nodes:
  - {name: client, role: client, interfaces: [{network: home, address: 192.168.1.254}]}
  - name: director
    role: director
    interfaces: [{network: home, address: 192.168.1.1}]
    routes: [{to: 172.16.5.0/24, via: 192.168.1.250}]
  - name: gw
    role: router
    interfaces: [{network: home, address: 192.168.1.250}, {network: abroad, address: 172.16.5.1}]
  - name: mirror
    role: realserver
    interfaces: [{network: abroad, address: 172.16.5.10}]
    routes: [{to: default, via: 172.16.5.1}]
services:
  - {vip: 192.168.1.110:21, realservers: [{node: mirror, forward: tun}]}
`))
	require.NoError(t, err)
	in, err := topo.Build(context.Background(), s.Lab(), topo.Options{RunDir: t.TempDir()})
	require.NoError(t, err)
	inos := namespaceInodes(t, in)
	t.Cleanup(func() {
		require.NoError(t, in.Destroy())
		assertNothingLeft(t, filepath.Dir(in.Dir), inos)
	})
	out, err := in.Output("gw", "cat", "/proc/sys/net/ipv4/ip_forward")
	require.NoError(t, err)
	assert.Equal(t, "1\n", string(out), "a router forwards")
	out, err = in.Output("mirror", "ip", "-o", "link", "show", "eth0")
	require.NoError(t, err)
	assert.Contains(t, string(out), "mtu 1400", "the network's MTU")

	sock := listenUDP(t, in, "mirror", netip.AddrPortFrom(vip, 9999))
	atClient := listenUDP(t, in, "client", netip.AddrPortFrom(client, 40000))
	require.NoError(t, in.Do("director", func() error {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW, unix.IPPROTO_IPIP)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		return unix.Sendto(fd, udpTo(t, nil, "across the sea"), 0, &unix.SockaddrInet4{Addr: [4]byte{172, 16, 5, 10}})
	}))
	msg, from := receive(t, sock)
	assert.Equal(t, "across the sea", msg)
	assert.Equal(t, client, from.Addr())

	_, err = sock.WriteToUDPAddrPort([]byte("greetings from abroad"), from)
	require.NoError(t, err)
	msg, from = receive(t, atClient)
	assert.Equal(t, "greetings from abroad", msg)
	assert.Equal(t, netip.AddrPortFrom(vip, 9999), from, "the reply comes from the VIP, straight from the real server")
}

// TestKilledRunnerLeavesNothingAfterDestroyAll: a runner holding an unpinned
// lab is SIGKILLed; its namespaces die with it, its agents die with it, and
// destroy --all removes the rest.
func TestKilledRunnerLeavesNothingAfterDestroyAll(t *testing.T) {
	requireNamespaces(t)
	runDir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "LVSLAB_TEST_HOLD="+runDir)
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	line, err := bufio.NewReader(out).ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, "up\n", line)

	labs, err := topo.List(runDir)
	require.NoError(t, err)
	require.Len(t, labs, 1)
	lab := labs[0]
	assert.True(t, lab.RunnerAlive)
	require.Len(t, lab.Agents, 3)
	// A live runner's unpinned nodes are reachable through its descriptors.
	f, err := lab.OpenNetNS("rs1")
	require.NoError(t, err)
	f.Close()
	_, err = topo.DestroyAll(runDir)
	require.Error(t, err, "a lab whose runner lives is left to it")

	require.NoError(t, cmd.Process.Kill())
	cmd.Wait()
	for _, a := range lab.Agents {
		require.Eventually(t, func() bool { return syscall.Kill(a.PID, 0) != nil }, 10*time.Second, 10*time.Millisecond,
			"agent %d dies with its runner", a.PID)
	}
	labs, err = topo.List(runDir)
	require.NoError(t, err)
	require.Len(t, labs, 1)
	assert.False(t, labs[0].RunnerAlive)
	_, err = labs[0].OpenNetNS("rs1")
	assert.Error(t, err, "an unpinned node is gone with its runner")
	removed, err := topo.DestroyAll(runDir)
	require.NoError(t, err)
	assert.Equal(t, []string{lab.ID}, removed)
	owned := map[uint64]uint64{}
	for _, n := range lab.Nodes {
		owned[n.Ino] = n.Cookie
	}
	assertNothingLeft(t, runDir, owned)
}
