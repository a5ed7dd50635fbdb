package engine_test

import (
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/lvslab/lvslab/dataplane/engine"
	"github.com/lvslab/lvslab/loadgen/wire"
	"github.com/lvslab/lvslab/scheduler/picks"
)

// vip2 is the second virtual address the firewall-mark tests mark.
var vip2 = netip.MustParseAddr("192.168.1.111")

const markUDPPort = 5300

// markRules is what an operator loads in the director's namespace: mark 1
// for tcp 80 and 443 of both VIPs, mark 2 for udp 5300 of the second, in
// a prerouting chain of the filter priority (after mangle, where iptables
// marks: any prerouting priority does, as for the kernel's IPVS).
const markRules = `table ip lvstest-mark {
	chain pre {
		type filter hook prerouting priority filter; policy accept;
		ip daddr { 192.168.1.110, 192.168.1.111 } tcp dport { 80, 443 } meta mark set 1
		ip daddr 192.168.1.111 udp dport 5300 meta mark set 2
	}
}
`

// fwmarkLab is a seed lab whose tcp 80 service gave way to firewall-mark
// services over two VIPs (the udp service of the first stays, so the tap
// path keeps an address-port service on an address the marks also cover):
// -f 1 (tcp 80 and 443 of both VIPs) and -f 2 (udp 5300 of the second),
// rr over the real servers in address order, by the example's forwarding
// method.
type fwmarkLab struct {
	*lab
	dests []netip.Addr // in the order they were added
}

func startFWMarkLab(t testing.TB, example string, agentFlags ...string) *fwmarkLab {
	lb := startLab(t, example, "rr", agentFlags...)
	method := map[string]string{"nat": "-m", "dr": "-g", "tun": "-i"}[example]
	require.NotEmpty(t, method)

	// The second VIP: on the director, and on every DR/TUN real server's lo.
	require.NoError(t, lb.in.Do("director", func() error {
		addrs, err := netlink.AddrList(nil, netlink.FAMILY_V4)
		if err != nil {
			return err
		}
		for _, a := range addrs {
			if a.IP.Equal(vip.AsSlice()) {
				l, err := netlink.LinkByIndex(a.LinkIndex)
				if err != nil {
					return err
				}
				return netlink.AddrAdd(l, &netlink.Addr{IPNet: netlink.NewIPNet(vip2.AsSlice())})
			}
		}
		return os.ErrNotExist
	}))
	fl := &fwmarkLab{lab: lb}
	for rip, node := range lb.rips {
		fl.dests = append(fl.dests, rip)
		if method != "-m" {
			require.NoError(t, lb.in.Do(node, func() error {
				lo, err := netlink.LinkByName("lo")
				if err != nil {
					return err
				}
				return netlink.AddrAdd(lo, &netlink.Addr{IPNet: netlink.NewIPNet(vip2.AsSlice())})
			}))
		}
		serve(t, lb.in, node, wire.TCP, netip.AddrPortFrom(netip.IPv4Unspecified(), 443))
		udp := netip.AddrPortFrom(netip.IPv4Unspecified(), markUDPPort)
		if method != "-m" {
			udp = netip.AddrPortFrom(vip2, markUDPPort) // answer from the VIP
		}
		serve(t, lb.in, node, wire.UDP, udp)
	}
	slices.SortFunc(fl.dests, netip.Addr.Compare)

	rules := filepath.Join(t.TempDir(), "mark.nft")
	require.NoError(t, os.WriteFile(rules, []byte(markRules), 0o600))
	_, err := lb.in.Output("director", "nft", "-f", rules)
	require.NoError(t, err)

	lb.ipvsadm(t, "-D", "-t", netip.AddrPortFrom(vip, tcpPort).String())
	for _, mark := range []string{"1", "2"} {
		lb.ipvsadm(t, "-A", "-f", mark, "-s", "rr")
		for _, d := range fl.dests {
			lb.ipvsadm(t, "-a", "-f", mark, "-r", d.String(), method, "-w", "1")
		}
	}
	return fl
}

// picks is what scheduler/picks (lvslab sched) gives for n new connections
// of a fresh rr service over the lab's real servers.
func (fl *fwmarkLab) picks(t testing.TB, n int) []string {
	var dests []picks.DestSpec
	for _, d := range fl.dests {
		dests = append(dests, picks.DestSpec{Addr: netip.AddrPortFrom(d, 0), Weight: 1})
	}
	res, err := picks.Run(picks.Config{Scheduler: "rr", Dests: dests, Picks: n, Conn: picks.Inactive})
	require.NoError(t, err)
	var names []string
	for _, p := range res.Picks {
		names = append(names, fl.rips[p.Dest.Addr()])
	}
	return names
}

// snmp reads counters of node's /proc/net/snmp, as "Proto Name".
func (lb *lab) snmp(t testing.TB, node string, counters ...string) []int {
	out, err := lb.in.Output(node, "cat", "/proc/net/snmp")
	require.NoError(t, err)
	var vs []int
	for _, c := range counters {
		f := strings.Fields(c)
		v, err := strconv.Atoi(snmpValue(t, string(out), f[0], f[1]))
		require.NoError(t, err)
		vs = append(vs, v)
	}
	return vs
}

// sent is what the client sent (tcp segments, udp datagrams) and what the
// real servers received, together.
func (fl *fwmarkLab) sent(t testing.TB) (client, servers [2]int) {
	c := fl.snmp(t, "client", "Tcp OutSegs", "Udp OutDatagrams")
	client = [2]int{c[0], c[1]}
	for _, node := range fl.rips {
		s := fl.snmp(t, node, "Tcp InSegs", "Udp InDatagrams")
		servers[0] += s[0]
		servers[1] += s[1]
	}
	return client, servers
}

// markStats returns the InPkts of the fwmark service mark in the --stats
// listing.
func markStats(listing string, mark int) int {
	for _, line := range strings.Split(listing, "\n") {
		f := strings.Fields(line)
		if len(f) >= 4 && f[0] == "FWM" && f[1] == strconv.Itoa(mark) {
			n, _ := strconv.Atoi(f[3])
			return n
		}
	}
	return -1
}

func (lb *lab) dialAt(to netip.AddrPort) error {
	return lb.in.Do("client", func() error {
		c, err := net.DialTimeout("tcp", to.String(), 5*time.Second)
		if err == nil {
			c.Close()
		}
		return err
	})
}

// queueTable returns the engine's nftables table in the director, or "".
func (lb *lab) queueTable(t testing.TB) string {
	out, err := lb.in.Output("director", "nft", "list", "ruleset")
	require.NoError(t, err)
	for _, block := range strings.SplitAfter(string(out), "\n}\n") {
		if strings.Contains(block, "table inet "+engine.MarkTablePrefix) {
			return block
		}
	}
	return ""
}

func testFWMark(t *testing.T, example string, agentFlags ...string) {
	fl := startFWMarkLab(t, example, agentFlags...)
	table := fl.queueTable(t)
	require.NotEmpty(t, table, "the engine's queue table, with fwmark services")
	assert.Contains(t, table, "elements = { 0x00000001, 0x00000002 }", "its set holds the services' marks")
	assert.Contains(t, table, "type filter hook input priority 98;", "where IPVS hooks LOCAL_IN, after every prerouting rule")
	t.Logf("%s", table)

	client0, servers0 := fl.sent(t)
	// Both VIPs, both ports: one service, one rr.
	var got []string
	targets := []netip.AddrPort{
		netip.AddrPortFrom(vip, 80), netip.AddrPortFrom(vip, 443),
		netip.AddrPortFrom(vip2, 80), netip.AddrPortFrom(vip2, 443),
	}
	for i := range 8 {
		got = append(got, fl.askAt(t, "tcp", targets[i%len(targets)], uint32(i)))
	}
	assert.Equal(t, fl.picks(t, 8), got, "connections to both VIPs and ports are spread by rr as lvslab sched picks")
	var udp []string
	for i := range 3 {
		udp = append(udp, fl.askAt(t, "udp", netip.AddrPortFrom(vip2, markUDPPort), uint32(100+i)))
	}
	assert.Equal(t, fl.picks(t, 3), udp, "udp through mark 2")

	// Every packet the client sent was forwarded once: the real servers got
	// as many as the client sent, and the services counted as many.
	var client, servers [2]int
	var stats string
	settled := func() bool {
		client, servers = fl.sent(t)
		stats = fl.ipvsadm(t, "-L", "-n", "--stats")
		tcp, udp := client[0]-client0[0], client[1]-client0[1]
		return tcp > 0 && servers[0]-servers0[0] == tcp && servers[1]-servers0[1] == udp &&
			markStats(stats, 1) == tcp && markStats(stats, 2) == udp
	}
	assert.Eventually(t, settled, 5*time.Second, 100*time.Millisecond)
	tcpSent, udpSent := client[0]-client0[0], client[1]-client0[1]
	assert.Equal(t, tcpSent, servers[0]-servers0[0], "tcp segments the real servers got, of those the client sent")
	assert.Equal(t, udpSent, servers[1]-servers0[1], "udp datagrams the real servers got, of those the client sent")
	assert.Equal(t, tcpSent, markStats(stats, 1), "FWM 1 InPkts")
	assert.Equal(t, udpSent, markStats(stats, 2), "FWM 2 InPkts")
	t.Logf("%s", stats)

	// Persistence: the fwmark template keeps the client on one real server
	// across VIPs and ports.
	fl.ipvsadm(t, "-E", "-f", "1", "-s", "rr", "-p", "60")
	first := fl.askAt(t, "tcp", targets[0], 200)
	for i, to := range []netip.AddrPort{targets[3], targets[1], targets[2]} {
		assert.Equal(t, first, fl.askAt(t, "tcp", to, uint32(201+i)), "%s: the client stays on %s", to, first)
	}
	conns := fl.ipvsadm(t, "-L", "-n", "-c")
	assert.Regexp(t, `(?m)^IP  00:[56]\d  ASSURED     192\.168\.1\.254:0 +0\.0\.0\.1:0 +\S+:0$`, conns,
		"the fwmark template: protocol IP, the mark as the virtual address")
	t.Logf("%s", conns)

	// What no marking rule marks is the director's own stack's: a RST.
	require.ErrorIs(t, fl.dialAt(netip.AddrPortFrom(vip2, 8080)), unix.ECONNREFUSED)
	snmp, err := fl.in.Output("director", "cat", "/proc/net/snmp")
	require.NoError(t, err)
	assert.Equal(t, "1", snmpValue(t, string(snmp), "Tcp", "OutRsts"), "the RST for port 8080 only")
	assert.Equal(t, "0", snmpValue(t, string(snmp), "Ip", "ForwDatagrams"), "packets the director's kernel forwarded")

	// The udp address-port service of the first VIP still works by the tap.
	assert.Contains(t, slices.Collect(mapValues(fl.rips)), fl.ask(t, "udp", udpPort, 300))

	// The last fwmark service takes the queue table with it; marked
	// packets then reach the director's stack like any other.
	fl.ipvsadm(t, "-D", "-f", "1")
	assert.Contains(t, fl.queueTable(t), "elements = { 0x00000002 }")
	fl.ipvsadm(t, "-D", "-f", "2")
	assert.Empty(t, fl.queueTable(t), "no fwmark service, no queue table")
	require.ErrorIs(t, fl.dialAt(netip.AddrPortFrom(vip, 80)), unix.ECONNREFUSED)

	// Close leaves nothing: a service again, then stop the agent.
	fl.ipvsadm(t, "-A", "-f", "1", "-s", "rr")
	require.NotEmpty(t, fl.queueTable(t))
	require.NoError(t, fl.agent.Stop(5*time.Second))
	assert.Empty(t, fl.queueTable(t), "the engine's Close removes its table")
	queues, err := fl.in.Output("director", "cat", "/proc/net/netfilter/nfnetlink_queue")
	require.NoError(t, err)
	assert.Empty(t, strings.TrimSpace(string(queues)), "no queue bound")
	assert.NotContains(t, strings.Join(nftTables(t, -1), " "), engine.MarkTablePrefix, "nothing in the test's own namespace")
}

// nftTables lists the nftables tables of the namespace nsfd (negative:
// the caller's).
func nftTables(t testing.TB, nsfd int) []string {
	var opts []nftables.ConnOption
	if nsfd >= 0 {
		opts = append(opts, nftables.WithNetNSFd(nsfd))
	}
	c, err := nftables.New(opts...)
	require.NoError(t, err)
	ts, err := c.ListTables()
	require.NoError(t, err)
	var names []string
	for _, tb := range ts {
		names = append(names, tb.Name)
	}
	return names
}

func mapValues[K comparable, V any](m map[K]V) func(func(V) bool) {
	return func(yield func(V) bool) {
		for _, v := range m {
			if !yield(v) {
				return
			}
		}
	}
}

func TestFWMarkNAT(t *testing.T) { testFWMark(t, "nat") }
func TestFWMarkDR(t *testing.T)  { testFWMark(t, "dr") }
func TestFWMarkTUN(t *testing.T) { testFWMark(t, "tun") }

// TestFWMarkWorkers: with two packet goroutines, the steering program
// learns the fwmark VIPs too, so both directions of a NAT connection meet
// one worker.
func TestFWMarkWorkers(t *testing.T) { testFWMark(t, "nat", "--workers", "2") }

// BenchmarkQueuePath compares the two ways a client's packet reaches the
// engine in the DR lab, one request and its answer per op over one UDP
// socket, window requests in flight: the tap path (the udp address-port
// service of the first VIP) and the queue path (mark 2 on the second:
// every UDP datagram of a fwmark service crosses the queue).
// ns/op is the time per request and answer;
// agent-µs/pkt is the director agent's CPU time (user and system) per
// packet it forwarded. The kernel's own share of the queue path (copying
// the packet to the queue, in the sender's softirq) is not in it.
func BenchmarkQueuePath(b *testing.B) {
	fl := startFWMarkLab(b, "dr")
	for _, c := range []struct {
		name    string
		to      netip.AddrPort
		service []string
	}{
		{"tap", netip.AddrPortFrom(vip, udpPort), []string{"UDP", netip.AddrPortFrom(vip, udpPort).String()}},
		{"queue", netip.AddrPortFrom(vip2, markUDPPort), []string{"FWM", "2"}},
	} {
		for _, window := range []int{1, 16} {
			b.Run(fmt.Sprintf("%s/window=%d", c.name, window), func(b *testing.B) {
				var conn net.Conn
				require.NoError(b, fl.in.Do("client", func() (err error) {
					conn, err = net.Dial("udp", c.to.String())
					return err
				}))
				defer conn.Close()
				req, resp := make([]byte, wire.RequestLen), make([]byte, 2048)
				pkts0, cpu0 := fl.inPkts(b, c.service), agentCPU(b, fl.agent.PID)
				b.ResetTimer()
				for i := 0; i < b.N; i += window {
					n := min(window, b.N-i)
					require.NoError(b, conn.SetDeadline(time.Now().Add(5*time.Second)))
					for k := range n {
						wire.PutRequest(req, wire.RequestLen, 0, uint32(i+k))
						_, err := conn.Write(req)
						require.NoError(b, err)
					}
					for range n {
						_, err := conn.Read(resp)
						require.NoError(b, err)
					}
				}
				b.StopTimer()
				cpu := agentCPU(b, fl.agent.PID) - cpu0
				var pkts int
				require.Eventually(b, func() bool {
					pkts = fl.inPkts(b, c.service) - pkts0
					return pkts >= b.N
				}, 5*time.Second, 100*time.Millisecond)
				b.ReportMetric(float64(cpu.Microseconds())/float64(pkts), "agent-µs/pkt")
			})
		}
	}
}

// inPkts reads the InPkts of a service ("UDP" "addr:port", or "FWM" "N")
// from the --stats listing.
func (lb *lab) inPkts(t testing.TB, service []string) int {
	for _, line := range strings.Split(lb.ipvsadm(t, "-L", "-n", "--stats"), "\n") {
		if f := strings.Fields(line); len(f) >= 4 && f[0] == service[0] && f[1] == service[1] {
			n, err := strconv.Atoi(f[3])
			require.NoError(t, err)
			return n
		}
	}
	t.Fatalf("no service %v in the listing", service)
	return 0
}

// agentCPU is the user and system time process pid has used.
func agentCPU(t testing.TB, pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	require.NoError(t, err)
	// Fields after the command (which may hold spaces): utime is the 14th
	// field of the line, the 12th after ")".
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	ut, err := strconv.ParseInt(f[11], 10, 64)
	require.NoError(t, err)
	st, err := strconv.ParseInt(f[12], 10, 64)
	require.NoError(t, err)
	const hz = 100 // USER_HZ
	return time.Duration(ut+st) * time.Second / hz
}

// BenchmarkBulkTCPFWMark is BenchmarkBulkTCP/dr through a firewall-mark
// service: only the SYN crosses the netfilter queue, the rest of the
// connection comes by the tap path, GSO super-packets whole.
//
//	go test -run '^$' -bench 'BulkTCP' -benchtime 300x ./dataplane/engine
func BenchmarkBulkTCPFWMark(b *testing.B) {
	const port = 9000
	fl := startFWMarkLab(b, "dr")
	_, err := fl.in.Output("director", "nft", "add", "rule", "ip", "lvstest-mark", "pre",
		"ip", "daddr", vip2.String(), "tcp", "dport", strconv.Itoa(port), "meta", "mark", "set", "1")
	require.NoError(b, err)
	for _, node := range fl.rips {
		sink(b, fl.lab, node, port)
	}
	pushBulk(b, fl.lab, netip.AddrPortFrom(vip2, port).String())
}

// TestFWMarkStaysInItsNamespace: an engine run in a namespace of its own
// and driven from the test's (as fwdbench does) sets up its fwmark queue
// and table in its namespace, never in the caller's, and Close removes
// them.
func TestFWMarkStaysInItsNamespace(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to create a network namespace")
	}
	var e *engine.Engine
	var ns netns.NsHandle
	func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		orig, err := netns.Get()
		require.NoError(t, err)
		defer orig.Close()
		ns, err = netns.New() // and switched to
		require.NoError(t, err)
		defer func() { require.NoError(t, netns.Set(orig)) }()
		veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "lvsfwm0"}, PeerName: "lvsfwm1"}
		require.NoError(t, netlink.LinkAdd(veth))
		require.NoError(t, netlink.LinkSetUp(veth))
		e, err = engine.Start(engine.Config{Interfaces: []string{"lvsfwm0"}})
		require.NoError(t, err)
	}()
	t.Cleanup(func() { ns.Close() }) // the namespace goes with its last handle
	tables := func(h netns.NsHandle) []string { return nftTables(t, int(h)) }
	root, err := netns.Get()
	require.NoError(t, err)
	defer root.Close()

	var stderr strings.Builder
	require.Equal(t, 0, e.Ipvsadm([]string{"-A", "-f", "1", "-s", "rr"}, nil, io.Discard, &stderr))
	require.Empty(t, stderr.String())
	assert.Equal(t, []string{engine.MarkTablePrefix + "19472"}, tables(ns), "the table is in the engine's namespace")
	assert.NotContains(t, strings.Join(tables(root), " "), engine.MarkTablePrefix, "and not in the caller's")

	// A second engine in the namespace takes the next queue.
	var e2 *engine.Engine
	func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		require.NoError(t, netns.Set(ns))
		defer func() { require.NoError(t, netns.Set(root)) }()
		e2, err = engine.Start(engine.Config{Interfaces: []string{"lvsfwm0"}})
		require.NoError(t, err)
	}()
	require.Equal(t, 0, e2.Ipvsadm([]string{"-A", "-f", "2", "-s", "rr"}, nil, io.Discard, &stderr))
	require.Empty(t, stderr.String())
	assert.ElementsMatch(t, []string{engine.MarkTablePrefix + "19472", engine.MarkTablePrefix + "19473"}, tables(ns))

	require.NoError(t, e.Close())
	require.NoError(t, e2.Close())
	assert.Empty(t, tables(ns), "Close removes them")
}
