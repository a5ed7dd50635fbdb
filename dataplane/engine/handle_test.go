package engine

import (
	"io"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket/layers"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lvslab/lvslab/dataplane"
	"github.com/lvslab/lvslab/dataplane/header"
	"github.com/lvslab/lvslab/dataplane/header/headertest"
	"github.com/lvslab/lvslab/dataplane/ipvsadm"
	"github.com/lvslab/lvslab/dataplane/packetio"
	"github.com/lvslab/lvslab/dataplane/parse"
	"github.com/lvslab/lvslab/scheduler"
)

// A director with a public side (interface 1: clients) and an internal side
// (interface 2: real servers), as in the classic NAT lab, and no sockets:
// tests call handle and read the send queues.
var (
	clientAddr = netip.MustParseAddr("192.168.1.254")
	natVIP     = netip.MustParseAddr("192.168.1.110")
	drVIP      = netip.MustParseAddr("192.168.1.111")
	tunVIP     = netip.MustParseAddr("192.168.1.112")
	emptyVIP   = netip.MustParseAddr("192.168.1.113")
	rs1        = netip.MustParseAddr("10.1.1.2")
	rs2        = netip.MustParseAddr("10.1.1.3")
	dirInside  = netip.MustParseAddr("10.1.1.1")

	publicMAC   = header.MAC(headertest.DirectorMAC)
	internalMAC = header.MAC{0x02, 0, 0, 0, 0, 3}
	clientMAC   = header.MAC(headertest.ClientMAC)
	rs1MAC      = header.MAC{0x02, 0, 0, 0, 1, 2}
	rs2MAC      = header.MAC{0x02, 0, 0, 0, 1, 3}
)

var t0 = time.Unix(1_700_000_000, 0)

func testEngine(t testing.TB) *Engine {
	t.Helper()
	e := &Engine{cfg: Config{Batch: 64}, core: dataplane.New(scheduler.ProfileCurrent, t0), vips: map[netip.Addr]bool{}}
	e.ctl = e.core.Control(func() time.Time { return t0 })
	table := map[netip.Addr]hop{
		clientAddr: {ifindex: 1, mac: clientMAC},
		rs1:        {ifindex: 2, mac: rs1MAC, src: dirInside},
		rs2:        {ifindex: 2, mac: rs2MAC, src: dirInside},
	}
	find := func(dst netip.Addr, _ bool) (hop, bool) { h, ok := table[dst]; return h, ok }
	e.hops = newCache(find, find)
	e.ifs = []*iface{
		{pos: 0, index: 1, name: "eth0", mac: publicMAC, mtu: 1500},
		{pos: 1, index: 2, name: "eth1", mac: internalMAC, mtu: 1500},
	}
	rules := `-A -t 192.168.1.110:80 -s rr
-a -t 192.168.1.110:80 -r 10.1.1.2:8080 -m
-A -t 192.168.1.111:80 -s rr
-a -t 192.168.1.111:80 -r 10.1.1.2:80 -g
-A -u 192.168.1.112:53 -s rr
-a -u 192.168.1.112:53 -r 10.1.1.3:53 -i
-A -t 192.168.1.113:80 -s rr
`
	require.Equal(t, 0, ipvsadm.Run(e.ctl, []string{"-R"}, strings.NewReader(rules), io.Discard, io.Discard))
	e.syncServices(t0)
	return e
}

// receive hands frame to the engine as received on interface in and
// returns what it queued, per interface (frames copied out).
func receive(e *Engine, b *batch, in int, frame []byte) [2][][]byte {
	pk := &b.rx[0]
	pk.Off, pk.Len = packetio.Headroom, len(frame)
	copy(pk.Buf[pk.Off:], frame)
	pk.Vnet = [header.VirtioNetHdrSize]byte{}
	e.handle(b, e.ifs[in], pk, t0)
	var out [2][][]byte
	for i, q := range b.out {
		for _, p := range q {
			out[i] = append(out[i], append([]byte(nil), p.Frame()...))
		}
		clear(q)
		b.out[i] = q[:0]
	}
	b.nspare = 0
	return out
}

// relink sets the link addresses a frame leaves with.
func relink(frame []byte, src, dst header.MAC) []byte {
	header.Ethernet(frame).SetSource(src)
	header.Ethernet(frame).SetDestination(dst)
	return frame
}

func TestHandle(t *testing.T) {
	e := testEngine(t)
	b := newBatch(4, 2)
	syn := headertest.Spec{Src: clientAddr, Dst: natVIP, SrcPort: 40000, DstPort: 80, TCPFlags: header.TCPFlagSYN, DF: true}

	// NAT: the client's SYN leaves on the inside to the real server, its
	// address, port, TTL and checksums rewritten.
	out := receive(e, b, 0, headertest.TCP(syn))
	want := syn
	want.Dst, want.DstPort, want.TTL = rs1, 8080, 63
	require.Len(t, out[1], 1)
	assert.Empty(t, out[0])
	assert.Equal(t, relink(headertest.TCP(want), internalMAC, rs1MAC), out[1][0])

	// NAT reply: from the VIP to the client on the public side.
	synack := headertest.Spec{Src: rs1, Dst: clientAddr, SrcPort: 8080, DstPort: 40000, TCPFlags: header.TCPFlagSYN | header.TCPFlagACK, DF: true}
	out = receive(e, b, 1, headertest.TCP(synack))
	want = synack
	want.Src, want.SrcPort, want.TTL = natVIP, 80, 63
	require.Len(t, out[0], 1)
	assert.Equal(t, relink(headertest.TCP(want), publicMAC, clientMAC), out[0][0])
	assert.Equal(t, uint64(1), e.cnt.In)
	assert.Equal(t, uint64(1), e.cnt.Out)

	// DR: only the link addresses (and the TTL) change.
	dr := syn
	dr.Dst = drVIP
	out = receive(e, b, 0, headertest.TCP(dr))
	want = dr
	want.TTL = 63
	require.Len(t, out[1], 1)
	assert.Equal(t, relink(headertest.TCP(want), internalMAC, rs1MAC), out[1][0])

	// TUN: the client's datagram inside IPIP from the director's inside
	// address to the real server.
	q := headertest.Spec{Src: clientAddr, Dst: tunVIP, SrcPort: 5353, DstPort: 53, Payload: []byte("query"), DF: true}
	out = receive(e, b, 0, headertest.UDP(q))
	require.Len(t, out[1], 1)
	pkt := headertest.Decode(out[1][0])
	outer := pkt.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
	assert.Equal(t, layers.IPProtocolIPv4, outer.Protocol)
	assert.Equal(t, dirInside.AsSlice(), []byte(outer.SrcIP.To4()))
	assert.Equal(t, rs2.AsSlice(), []byte(outer.DstIP.To4()))
	assert.Equal(t, layers.IPv4DontFragment, outer.Flags&layers.IPv4DontFragment, "DF copied (pmtu_disc)")
	inner := q
	inner.TTL = 63
	innerIP := headertest.UDP(inner)[header.EthernetSize:]
	innerIP = innerIP[:header.IPv4(innerIP).TotalLength()] // no link padding inside
	assert.Equal(t, innerIP, out[1][0][header.EthernetSize+header.IPv4MinimumSize:])

	// A service without destinations: ICMP port unreachable from the VIP.
	rej := syn
	rej.Dst = emptyVIP
	out = receive(e, b, 0, headertest.TCP(rej))
	require.Len(t, out[0], 1)
	icmp := headertest.Decode(out[0][0]).Layer(layers.LayerTypeICMPv4).(*layers.ICMPv4)
	assert.Equal(t, layers.CreateICMPv4TypeCode(3, 3), icmp.TypeCode)
	assert.Equal(t, uint64(1), e.cnt.Replies)

	// Not a connection's packet (an ACK without a SYN): dropped.
	ack := syn
	ack.SrcPort, ack.TCPFlags = 40001, header.TCPFlagACK
	out = receive(e, b, 0, headertest.TCP(ack))
	assert.Empty(t, out[0])
	assert.Empty(t, out[1])
	assert.Equal(t, uint64(1), e.cnt.Dropped)

	// Traffic that is not the director's: left to the kernel.
	other := headertest.Spec{Src: clientAddr, Dst: netip.MustParseAddr("192.168.1.1"), SrcPort: 1, DstPort: 22, TCPFlags: header.TCPFlagSYN}
	out = receive(e, b, 0, headertest.TCP(other))
	assert.Empty(t, out[0])
	assert.Empty(t, out[1])

	// A VIP's port without a service: the director's own stack answers it
	// (the kernel's drop sets hold only the services), the engine does not.
	closed := syn
	closed.DstPort = 23
	out = receive(e, b, 0, headertest.TCP(closed))
	assert.Empty(t, out[0])
	assert.Empty(t, out[1])
	assert.Equal(t, uint64(1), e.cnt.Replies, "no reply of the engine's for it")

	// Malformed: counted by reason.
	receive(e, b, 0, headertest.TCP(syn)[:20])
	assert.Equal(t, uint64(1), e.cnt.Reasons[parse.Truncated])

	// The core counted the NAT connection on its real server.
	svc, ok := e.core.Service(dataplane.ServiceKey{Proto: dataplane.ProtoTCP, Addr: natVIP, Port: 80}, t0)
	require.True(t, ok)
	assert.Equal(t, int32(1), svc.Dests[0].InactConns+svc.Dests[0].ActiveConns)
}

// FuzzHandle feeds arbitrary frames to the packet path from either side:
// it must never panic, and whatever it sends is well-formed (an IPIP
// packet parses as a protocol without a handler).
func FuzzHandle(f *testing.F) {
	for _, s := range headertest.Seeds() {
		f.Add(s, false)
	}
	f.Add(headertest.TCP(headertest.Spec{Src: clientAddr, Dst: natVIP, SrcPort: 1, DstPort: 80, TCPFlags: header.TCPFlagSYN}), false)
	f.Add(headertest.UDP(headertest.Spec{Src: clientAddr, Dst: tunVIP, SrcPort: 1, DstPort: 53}), false)
	f.Add(headertest.TCP(headertest.Spec{Src: rs1, Dst: clientAddr, SrcPort: 8080, DstPort: 1, TCPFlags: header.TCPFlagACK}), true)
	e := testEngine(f)
	b := newBatch(4, 2)
	f.Fuzz(func(t *testing.T, frame []byte, inside bool) {
		if len(frame) > packetio.MaxFrame {
			return
		}
		side := 0
		if inside {
			side = 1
		}
		for _, sent := range receive(e, b, side, frame) {
			for _, s := range sent {
				var p parse.Packet
				r := parse.Frame(s, nil, &p)
				assert.False(t, r.Drop(), "a frame the engine sends is well-formed (%v)", r)
			}
		}
	})
}

// BenchmarkNAT is the per-packet cost of an established NAT connection,
// one packet in and its reply out (the core, the rewrites, the next-hop
// cache; no system calls).
func BenchmarkNAT(b *testing.B) {
	e := testEngine(b)
	bt := newBatch(4, 2)
	in := headertest.Spec{Src: clientAddr, Dst: natVIP, SrcPort: 40000, DstPort: 80, TCPFlags: header.TCPFlagSYN, DF: true, Payload: make([]byte, 64)}
	receive(e, bt, 0, headertest.TCP(in))
	reply := headertest.Spec{Src: rs1, Dst: clientAddr, SrcPort: 8080, DstPort: 40000, TCPFlags: header.TCPFlagACK, DF: true, Payload: make([]byte, 64)}
	in.TCPFlags = header.TCPFlagACK
	frames := [2][]byte{headertest.TCP(in), headertest.TCP(reply)}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		side := i & 1
		pk := &bt.rx[0]
		pk.Off, pk.Len = packetio.Headroom, len(frames[side])
		copy(pk.Buf[pk.Off:], frames[side])
		e.handle(bt, e.ifs[side], pk, t0)
		for i := range bt.out {
			bt.out[i] = bt.out[i][:0]
		}
	}
	if e.cnt.In+e.cnt.Out < uint64(b.N) {
		b.Fatalf("forwarded %d of %d", e.cnt.In+e.cnt.Out, b.N)
	}
}

// TestNATLearnsANewClientsLinkAddress: the kernel has no neighbour entry
// for a client address it never talked to; the director takes the client's
// link address from its SYN, so the first reply is not lost.
func TestNATLearnsANewClientsLinkAddress(t *testing.T) {
	e := testEngine(t)
	var learned []netip.Addr
	e.hops.learner = func(src netip.Addr, mac header.MAC, ifindex int) (hop, bool) {
		learned = append(learned, src)
		return hop{ifindex: ifindex, mac: mac}, ifindex == 1
	}
	b := newBatch(4, 2)
	newClient := netip.MustParseAddr("192.168.1.201")
	newClientMAC := header.MAC{0x02, 0, 0, 0, 0xc9, 0x01}
	syn := headertest.Spec{Src: newClient, Dst: natVIP, SrcPort: 40000, DstPort: 80, TCPFlags: header.TCPFlagSYN, DF: true}
	out := receive(e, b, 0, relink(headertest.TCP(syn), newClientMAC, publicMAC))
	require.Len(t, out[1], 1)

	synack := headertest.Spec{Src: rs1, Dst: newClient, SrcPort: 8080, DstPort: 40000, TCPFlags: header.TCPFlagSYN | header.TCPFlagACK, DF: true}
	out = receive(e, b, 1, headertest.TCP(synack))
	require.Len(t, out[0], 1, "the first reply reaches the new client")
	assert.Equal(t, newClientMAC, header.Ethernet(out[0][0]).Destination())

	// Known now: the next packets do not ask again.
	ack := syn
	ack.TCPFlags = header.TCPFlagACK
	receive(e, b, 0, relink(headertest.TCP(ack), newClientMAC, publicMAC))
	assert.Equal(t, []netip.Addr{newClient}, learned)

	// DR replies bypass the director: nothing to learn.
	dr := syn
	dr.Src, dr.Dst = netip.MustParseAddr("192.168.1.202"), drVIP
	receive(e, b, 0, headertest.TCP(dr))
	assert.Equal(t, []netip.Addr{newClient}, learned)
}

// TestServicesFollowTheControl: -A, -E and -D tell the drop-set keeper
// exactly which service keys came and went; an edit changes no key.
func TestServicesFollowTheControl(t *testing.T) {
	e := testEngine(t)
	var added, removed []dataplane.ServiceKey
	calls := 0
	e.cfg.Services = func(a, r []dataplane.ServiceKey) { added, removed = a, r; calls++ }
	run := func(args ...string) {
		t.Helper()
		require.Equal(t, 0, e.Ipvsadm(args, nil, io.Discard, io.Discard), "ipvsadm %v", args)
	}
	allPorts := dataplane.ServiceKey{Proto: dataplane.ProtoUDP, Addr: natVIP}
	run("-A", "-u", "192.168.1.110:0", "-s", "rr", "-p", "60")
	assert.Equal(t, []dataplane.ServiceKey{allPorts}, added)
	assert.Empty(t, removed)
	run("-E", "-u", "192.168.1.110:0", "-s", "wrr", "-p", "60")
	assert.Equal(t, 1, calls, "an edit keeps the keys")
	run("-A", "-f", "7", "-s", "rr")
	assert.Equal(t, 1, calls, "a fwmark service has no key to drop")
	run("-D", "-t", "192.168.1.110:80")
	assert.Empty(t, added)
	assert.Equal(t, []dataplane.ServiceKey{{Proto: dataplane.ProtoTCP, Addr: natVIP, Port: 80}}, removed)
	assert.True(t, e.vips[natVIP], "the udp service keeps the address the engine's")
}
