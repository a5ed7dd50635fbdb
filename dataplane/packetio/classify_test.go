package packetio

import (
	"encoding/binary"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lvslab/lvslab/dataplane/header"
	ht "github.com/lvslab/lvslab/dataplane/header/headertest"
	"github.com/lvslab/lvslab/dataplane/parse"
)

func newClassifier(t testing.TB) *Classifier {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to load a BPF program")
	}
	s, err := NewClassifier()
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	return s
}

// steer runs the program on frame and returns the worker of a group of n.
func steer(t testing.TB, s *Classifier, frame []byte, n uint32) uint32 {
	t.Helper()
	ret, _, err := s.Steer().Test(frame)
	require.NoError(t, err)
	return ret % n
}

// TestSteeringKeepsANATFlowOnOneWorker runs the steering program on the
// request (client → VIP) and the NAT reply (real server → client) of many
// flows, IPv4 and IPv6, TCP and UDP: both land on the same worker, and the
// flows spread over every worker.
func TestSteeringKeepsANATFlowOnOneWorker(t *testing.T) {
	s := newClassifier(t)
	vip, rip := netip.MustParseAddr("10.9.0.100"), netip.MustParseAddr("10.9.1.2")
	vip6, rip6 := netip.MustParseAddr("2001:db8::100"), netip.MustParseAddr("2001:db8:1::2")
	require.NoError(t, s.SetVIPs([]netip.Addr{vip, vip6}, nil))

	const workers = 4
	used := map[bool]map[uint32]bool{true: {}, false: {}}
	for i := range 64 {
		c := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 9, byte(i), byte(7 * i)}), uint16(30000+97*i))
		v, r := vip, rip
		if i%2 == 1 {
			c = netip.AddrPortFrom(netip.AddrFrom16([16]byte{0x20, 1, 0xd, 0xb8, 15: byte(i * 5)}), uint16(30000+89*i))
			v, r = vip6, rip6
		}
		frame := ht.UDP
		if i%4 >= 2 {
			frame = ht.TCP
		}
		req := frame(ht.Spec{Src: c.Addr(), Dst: v, SrcPort: c.Port(), DstPort: 80})
		rep := frame(ht.Spec{Src: r, Dst: c.Addr(), SrcPort: 8080, DstPort: c.Port()})
		w := steer(t, s, req, workers)
		assert.Equal(t, w, steer(t, s, rep, workers), "request and reply of %v", c)
		used[c.Addr().Is4()][w] = true
	}
	assert.Len(t, used[true], workers, "IPv4 clients spread over every worker")
	assert.Len(t, used[false], workers, "IPv6 clients spread over every worker")
}

// TestSteeringHashesTheClient checks the hash itself: the client's address
// and port, the same as Fanout's classic program computes for the side it
// is told; a virtual address removed turns its packets into replies.
func TestSteeringHashesTheClient(t *testing.T) {
	s := newClassifier(t)
	vip, client := netip.MustParseAddr("10.9.0.100"), netip.AddrPortFrom(netip.MustParseAddr("10.9.3.4"), 40000)
	require.NoError(t, s.SetVIPs([]netip.Addr{vip}, nil))
	a := client.Addr().As4()
	want := uint32((binary.BigEndian.Uint32(a[:]) + uint32(client.Port())) * 2654435761 >> 16)
	req := ht.UDP(ht.Spec{Src: client.Addr(), Dst: vip, SrcPort: client.Port(), DstPort: 53})
	got, _, err := s.Steer().Test(req)
	require.NoError(t, err)
	assert.Equal(t, want, got)

	// Without the VIP the request is taken for a reply to the VIP's port.
	require.NoError(t, s.SetVIPs(nil, []netip.Addr{vip}))
	v := vip.As4()
	got, _, err = s.Steer().Test(req)
	require.NoError(t, err)
	assert.Equal(t, uint32((binary.BigEndian.Uint32(v[:])+53)*2654435761>>16), got)
	assert.NoError(t, s.SetVIPs(nil, []netip.Addr{vip}), "removing an absent VIP is no error")
}

// TestSteeringKeepsFragmentsTogether: every fragment of a datagram hashes
// on the addresses alone (later fragments carry no ports), and frames
// that are not IP go to worker 0.
func TestSteeringKeepsFragmentsTogether(t *testing.T) {
	s := newClassifier(t)
	vip := netip.MustParseAddr("10.9.0.100")
	require.NoError(t, s.SetVIPs([]netip.Addr{vip}, nil))
	var workers []uint32
	for i, fragOff := range []uint16{0x2000, 0x2000 | 185, 370} { // MF; MF, 1480 B in; last
		f := ht.UDP(ht.Spec{Src: netip.MustParseAddr("10.9.3.4"), Dst: vip, SrcPort: uint16(1000 + i), DstPort: 53})
		binary.BigEndian.PutUint16(f[header.EthernetSize+6:], fragOff)
		workers = append(workers, steer(t, s, f, 1<<16))
	}
	assert.Equal(t, workers[0], workers[1])
	assert.Equal(t, workers[0], workers[2])

	arp := make([]byte, 60)
	binary.BigEndian.PutUint16(arp[12:], 0x0806)
	assert.Zero(t, steer(t, s, arp, 1<<16))
}

// TestSteeringGroupKeepsAClientOnOneSocket sends requests and NAT replies
// of many clients through one interface into a two-socket fanout group
// running the steering program, the sockets filtered: each client's
// request and reply are read from the same socket, and nothing else.
func TestSteeringGroupKeepsAClientOnOneSocket(t *testing.T) {
	n, a, b := vethNS(t)
	s := newClassifier(t)
	require.NoError(t, s.AddNATSources([]netip.Addr{netip.MustParseAddr("10.9.1.2")}))
	vip, rip := netip.MustParseAddr("10.9.0.100"), netip.MustParseAddr("10.9.1.2")
	require.NoError(t, s.SetVIPs([]netip.Addr{vip}, nil))
	send := openIn(t, n, a, Config{})
	var group [2]*AFPacket
	for i := range group {
		group[i] = openIn(t, n, b, Config{Fanout: &Fanout{ID: 9, Steering: s, Workers: 2}, Filter: s})
	}
	out := NewBatch(81)
	for i := range 40 {
		c := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 9, byte(i), byte(7 * i)}), uint16(30000+97*i))
		req := ht.UDP(ht.Spec{Src: c.Addr(), Dst: vip, SrcPort: c.Port(), DstPort: 53})
		rep := ht.UDP(ht.Spec{Src: rip, Dst: c.Addr(), SrcPort: 5300, DstPort: c.Port()})
		out[2*i].Len = copy(out[2*i].Buf[Headroom:], req)
		out[2*i+1].Len = copy(out[2*i+1].Buf[Headroom:], rep)
	}
	// A DR real server's reply, which the director's kernel routes.
	stray := netip.MustParseAddr("10.9.1.9")
	out[80].Len = copy(out[80].Buf[Headroom:], ht.UDP(ht.Spec{Src: stray, Dst: netip.MustParseAddr("10.9.3.4"), SrcPort: 53, DstPort: 4000}))
	_, err := send.WriteBatch(out)
	require.NoError(t, err)

	seen := map[netip.AddrPort][2]int{} // client → socket+1 of its request, its reply
	batch := NewBatch(64)
	for got, deadline := 0, time.Now().Add(3*time.Second); got < 80 && time.Now().Before(deadline); {
		for i, sock := range group {
			k, err := sock.ReadBatch(batch)
			require.NoError(t, err)
			for _, p := range batch[:k] {
				var q parse.Packet
				if parse.Frame(p.Frame(), nil, &q) != parse.OK || q.Proto != header.ProtocolUDP {
					continue // router solicitations and the like (ICMPv6 passes)
				}
				require.NotEqual(t, stray, q.Src, "the filter passed a frame the director does not forward")
				c, dir := netip.AddrPortFrom(q.Src, q.SrcPort), 0
				if q.Dst != vip {
					c, dir = netip.AddrPortFrom(q.Dst, q.DstPort), 1
				}
				e := seen[c]
				e[dir] = i + 1
				seen[c] = e
				got++
			}
		}
		time.Sleep(time.Millisecond)
	}
	require.Len(t, seen, 40)
	time.Sleep(20 * time.Millisecond)
	for _, sock := range group {
		k, err := sock.ReadBatch(batch)
		require.NoError(t, err)
		for _, p := range batch[:k] {
			var q parse.Packet
			if parse.Frame(p.Frame(), nil, &q) == parse.OK {
				require.NotEqual(t, stray, q.Src, "the filter passed a frame the director does not forward")
			}
		}
	}
	used := map[int]bool{}
	for c, e := range seen {
		require.NotZero(t, e[0], "request of %v", c)
		assert.Equal(t, e[0], e[1], "request and reply of %v on one socket", c)
		used[e[0]] = true
	}
	assert.Len(t, used, 2, "both sockets get clients")
}

// TestFilterPassesWhatTheDirectorForwards runs the socket filter on frames
// to and from the director's services and real servers.
func TestFilterPassesWhatTheDirectorForwards(t *testing.T) {
	c := newClassifier(t)
	vip, natRIP, drRIP := netip.MustParseAddr("10.9.0.100"), netip.MustParseAddr("10.9.1.2"), netip.MustParseAddr("10.9.1.3")
	vip6, natRIP6 := netip.MustParseAddr("2001:db8::100"), netip.MustParseAddr("2001:db8:1::2")
	client, client6 := netip.MustParseAddr("10.9.3.4"), netip.MustParseAddr("2001:db8:3::4")
	require.NoError(t, c.SetVIPs([]netip.Addr{vip, vip6}, nil))
	require.NoError(t, c.AddNATSources([]netip.Addr{natRIP, natRIP6}))
	arp := make([]byte, 60)
	binary.BigEndian.PutUint16(arp[12:], 0x0806)
	for _, tc := range []struct {
		name  string
		frame []byte
		pass  bool
	}{
		{"request to a VIP", ht.TCP(ht.Spec{Src: client, Dst: vip, SrcPort: 40000, DstPort: 80}), true},
		{"IPv6 request to a VIP", ht.UDP(ht.Spec{Src: client6, Dst: vip6, SrcPort: 40000, DstPort: 53}), true},
		{"NAT reply", ht.TCP(ht.Spec{Src: natRIP, Dst: client, SrcPort: 80, DstPort: 40000}), true},
		{"IPv6 NAT reply", ht.UDP(ht.Spec{Src: natRIP6, Dst: client6, SrcPort: 53, DstPort: 40000}), true},
		{"DR reply the kernel routes", ht.TCP(ht.Spec{Src: vip, Dst: client, SrcPort: 80, DstPort: 40000}), false},
		{"traffic to the director's own address", ht.TCP(ht.Spec{Src: client, Dst: drRIP, SrcPort: 40000, DstPort: 22}), false},
		{"IPv6 traffic to another host", ht.UDP(ht.Spec{Src: client6, Dst: natRIP6, SrcPort: 40000, DstPort: 53}), false},
		{"an ICMP error", ht.ICMPError(drRIP, client, 3, 3, 0, ht.UDP(ht.Spec{Src: client, Dst: drRIP, SrcPort: 1, DstPort: 2}), 576), true},
		{"ARP", arp, true},
	} {
		ret, _, err := c.Filter().Test(tc.frame)
		require.NoError(t, err, tc.name)
		assert.Equal(t, tc.pass, ret != 0, tc.name)
	}

	require.NoError(t, c.SetVIPs(nil, []netip.Addr{vip}))
	ret, _, err := c.Filter().Test(ht.TCP(ht.Spec{Src: client, Dst: vip, SrcPort: 40000, DstPort: 80}))
	require.NoError(t, err)
	assert.Zero(t, ret, "a removed VIP's packets are dropped")
}

// BenchmarkClassifier runs the steering program and the socket filter in
// the kernel on a request and on a NAT reply (BPF_PROG_TEST_RUN); ns/run
// is one run.
func BenchmarkClassifier(b *testing.B) {
	c := newClassifier(b)
	vip, rip, client := netip.MustParseAddr("10.9.0.100"), netip.MustParseAddr("10.9.1.2"), netip.MustParseAddr("10.9.3.4")
	require.NoError(b, c.SetVIPs([]netip.Addr{vip}, nil))
	require.NoError(b, c.AddNATSources([]netip.Addr{rip}))
	frames := []struct {
		name  string
		frame []byte
	}{
		{"request", ht.UDP(ht.Spec{Src: client, Dst: vip, SrcPort: 40000, DstPort: 53})},
		{"reply", ht.UDP(ht.Spec{Src: rip, Dst: client, SrcPort: 53, DstPort: 40000})},
	}
	for _, prog := range []struct {
		name string
		p    *ebpf.Program
	}{{"steer", c.Steer()}, {"filter", c.Filter()}} {
		for _, f := range frames {
			b.Run(prog.name+"/"+f.name, func(b *testing.B) {
				const repeat = 1000
				var total time.Duration
				for b.Loop() {
					_, d, err := prog.p.Benchmark(f.frame, repeat, nil)
					require.NoError(b, err)
					total += d
				}
				b.ReportMetric(float64(total.Nanoseconds())/float64(b.N), "ns/run")
			})
		}
	}
}
