package engine

import (
	"io"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lvslab/lvslab/dataplane/defrag"
	"github.com/lvslab/lvslab/dataplane/header"
	"github.com/lvslab/lvslab/dataplane/header/headertest"
	"github.com/lvslab/lvslab/dataplane/ipvsadm"
	"github.com/lvslab/lvslab/dataplane/parse"
	"github.com/lvslab/lvslab/dataplane/xmit"
)

// fragmentsOf cuts a frame into fragments of at most mtu bytes of IP.
func fragmentsOf(t *testing.T, frame []byte, mtu int) [][]byte {
	t.Helper()
	var p parse.Packet
	require.Equal(t, parse.OK, parse.Frame(frame, nil, &p))
	outs, lens := make([][]byte, 64), make([]int, 64)
	for i := range outs {
		outs[i] = make([]byte, mtu+header.EthernetSize)
	}
	n := xmit.FragmentIPv4(outs, lens, frame, &p, mtu)
	require.NotZero(t, n)
	var fs [][]byte
	for i := range n {
		fs = append(fs, outs[i][:lens[i]])
	}
	return fs
}

// joined reassembles sent fragments in a table of the test's own, checking
// that none exceeds mtu bytes of IP.
func joined(t *testing.T, frames [][]byte, mtu int) []byte {
	t.Helper()
	tb := defrag.New(defrag.Config{})
	for i, f := range frames {
		ip := header.IPv4(f[header.EthernetSize:])
		require.True(t, ip.IsChecksumValid(), "fragment %d", i)
		assert.LessOrEqual(t, int(ip.TotalLength()), mtu, "fragment %d", i)
		if d, ok := tb.Add(f, header.EthernetSize, int(ip.TotalLength()), t0); ok {
			assert.Equal(t, len(frames)-1, i, "whole at the last fragment")
			return append([]byte(nil), d.Frame()...)
		}
	}
	t.Fatalf("%d frames do not make a datagram", len(frames))
	return nil
}

func payload(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*13 + i>>8)
	}
	return b
}

func ipOf(frame []byte) []byte {
	ip := frame[header.EthernetSize:]
	return ip[:header.IPv4(ip).TotalLength()]
}

// TestFragmentedDatagrams: a client's datagram that arrives in fragments
// is scheduled, rewritten and counted whole, then leaves in fragments no
// larger than those it came in, for every forwarding method; the NAT reply
// comes back the same way.
func TestFragmentedDatagrams(t *testing.T) {
	e := testEngine(t)
	rules := `-A -u 192.168.1.110:53 -s rr
-a -u 192.168.1.110:53 -r 10.1.1.2:5353 -m
-A -u 192.168.1.111:53 -s rr
-a -u 192.168.1.111:53 -r 10.1.1.2:53 -g
`
	require.Equal(t, 0, ipvsadm.Run(e.ctl, []string{"-R"}, strings.NewReader(rules), io.Discard, io.Discard))
	e.syncServices(t0)
	b := newBatch(64, 2)
	const mtu = 1000 // the client's fragments: smaller than the director's MTU
	data := payload(4000)

	q := headertest.Spec{Src: clientAddr, Dst: natVIP, SrcPort: 40000, DstPort: 53, Payload: data}
	var out [2][][]byte
	frags := fragmentsOf(t, headertest.UDP(q), mtu)
	require.Len(t, frags, 5)
	for i, f := range frags {
		out = receive(e, b, 0, f)
		if i < len(frags)-1 {
			assert.Empty(t, out[1], "nothing leaves before the datagram is whole")
		}
	}
	want := q
	want.Dst, want.DstPort, want.TTL = rs1, 5353, 63
	assert.Equal(t, ipOf(headertest.UDP(want)), ipOf(joined(t, out[1], mtu)), "NAT: the whole datagram, rewritten, in fragments of at most the client's size")
	assert.Equal(t, internalMAC, header.Ethernet(out[1][0]).Source())
	assert.Equal(t, rs1MAC, header.Ethernet(out[1][0]).Destination())
	assert.Equal(t, uint64(1), e.cnt.In, "one packet: the datagram")

	// The real server's reply in 1500-byte fragments, back to the client.
	r := headertest.Spec{Src: rs1, Dst: clientAddr, SrcPort: 5353, DstPort: 40000, Payload: payload(6000)}
	for _, f := range fragmentsOf(t, headertest.UDP(r), 1500) {
		out = receive(e, b, 1, f)
	}
	wantR := r
	wantR.Src, wantR.SrcPort, wantR.TTL = natVIP, 53, 63
	assert.Equal(t, ipOf(headertest.UDP(wantR)), ipOf(joined(t, out[0], 1500)), "the reply, from the VIP")
	assert.Equal(t, uint64(1), e.cnt.Out)

	// DR: the datagram unchanged but for the TTL.
	q.Dst = drVIP
	for _, f := range fragmentsOf(t, headertest.UDP(q), 1500) {
		out = receive(e, b, 0, f)
	}
	want = q
	want.TTL = 63
	assert.Equal(t, ipOf(headertest.UDP(want)), ipOf(joined(t, out[1], 1500)), "DR")

	// TUN: the whole datagram in IPIP, the outer packet fragmented.
	q.Dst, q.Payload = tunVIP, payload(20000)
	for _, f := range fragmentsOf(t, headertest.UDP(q), 1500) {
		out = receive(e, b, 0, f)
	}
	outer := ipOf(joined(t, out[1], 1500))
	assert.Equal(t, header.IPv4ProtocolIPIP, header.IPv4(outer).Protocol())
	assert.Equal(t, rs2, header.IPv4(outer).Destination())
	want = q
	want.TTL = 63
	assert.Equal(t, ipOf(headertest.UDP(want)), outer[header.IPv4MinimumSize:], "TUN: the client's datagram inside")

	c := e.frag.table.Counters()
	assert.Equal(t, uint64(4), c[defrag.Reassembled])
	assert.Equal(t, uint64(len(frags)+5+3+14), c[defrag.Requests], "fragments: 5 + the reply's 5 + DR 3 + TUN 14")
	assert.Equal(t, uint64(4), e.cnt.Fragmented)
}

// TestOversizedWithoutDF: a datagram larger than the route's MTU that
// arrived whole (a larger MTU on the client's side) is fragmented when DF
// is clear, and answered with fragmentation needed when it is set.
func TestOversizedWithoutDF(t *testing.T) {
	e := testEngine(t)
	b := newBatch(8, 2)
	q := headertest.Spec{Src: clientAddr, Dst: tunVIP, SrcPort: 5353, DstPort: 53, Payload: payload(3000)}
	out := receive(e, b, 0, headertest.UDP(q))
	require.Len(t, out[1], 3, "3048 bytes of IPIP in 1500-byte fragments")
	outer := ipOf(joined(t, out[1], 1500))
	assert.Equal(t, rs2, header.IPv4(outer).Destination())

	q.DF = true
	out = receive(e, b, 0, headertest.UDP(q))
	assert.Empty(t, out[1])
	require.Len(t, out[0], 1)
	icmp := header.ICMPv4(out[0][0][header.EthernetSize+header.IPv4MinimumSize:])
	assert.Equal(t, header.ICMPv4DestUnreach, icmp.Type())
	assert.Equal(t, uint16(1480), icmp.MTU())
}

// TestLostFragment: a datagram missing a fragment is never delivered; the
// engine's clock expires it after ipfrag_time, and as its first fragment
// came and it was for a virtual address, the director answers ICMP
// fragment reassembly time exceeded from that address, quoting the first
// fragment (ip_expire). A datagram whose first fragment never came, or
// that was not for the director, gets no answer.
func TestLostFragment(t *testing.T) {
	e := testEngine(t)
	type sent struct {
		ip  []byte
		dst netip.Addr
	}
	var icmps []sent
	e.frag.route = func(ip []byte, dst netip.Addr) error {
		icmps = append(icmps, sent{append([]byte(nil), ip...), dst})
		return nil
	}
	b := newBatch(8, 2)
	q := headertest.Spec{Src: clientAddr, Dst: tunVIP, SrcPort: 5353, DstPort: 53, Payload: payload(4000)}
	frags := fragmentsOf(t, headertest.UDP(q), 1500)
	for _, f := range frags[:len(frags)-1] {
		out := receive(e, b, 0, f)
		assert.Empty(t, out[1])
	}
	q.SrcPort = 5354 // another datagram, whose first fragment is lost
	other := headertest.UDP(q)
	oip := header.IPv4(other[header.EthernetSize:])
	oip.SetID(0x4321)
	oip.SetChecksum(0)
	oip.SetChecksum(oip.CalculateChecksum())
	for _, f := range fragmentsOf(t, other, 1500)[1:] {
		receive(e, b, 0, f)
	}
	r := headertest.Spec{Src: rs1, Dst: clientAddr, SrcPort: 53, DstPort: 5353, Payload: payload(4000)}
	receive(e, b, 1, fragmentsOf(t, headertest.UDP(r), 1500)[0]) // not for the director
	e.expireFragments(t0.Add(10 * time.Second))
	assert.Zero(t, e.frag.table.Counters()[defrag.Timeout])
	e.expireFragments(t0.Add(defrag.DefaultTimeout))
	assert.Equal(t, uint64(3), e.frag.table.Counters()[defrag.Timeout])
	require.Len(t, icmps, 1, "one answer: the datagram to the VIP with its first fragment")
	assert.Equal(t, clientAddr, icmps[0].dst)
	ip := header.IPv4(icmps[0].ip)
	assert.True(t, ip.IsChecksumValid())
	assert.Equal(t, tunVIP, ip.Source(), "from the virtual address")
	assert.Equal(t, clientAddr, ip.Destination())
	m := header.ICMPv4(ip.Payload())
	assert.True(t, m.IsChecksumValid())
	assert.Equal(t, header.ICMPv4TimeExceeded, m.Type())
	assert.Equal(t, uint8(icmpFragTime), m.Code())
	first := ipOf(frags[0])
	assert.Equal(t, first[:len(m.Quote())], []byte(m.Quote()), "quoting the first fragment (576 bytes of error)")
	assert.Equal(t, header.ICMPv4ErrorMaxSize, len(ip))

	out := receive(e, b, 0, frags[len(frags)-1])
	assert.Empty(t, out[1], "the last fragment alone makes nothing")
	assert.Zero(t, e.cnt.In)
}

func BenchmarkFragmentedNAT(b *testing.B) {
	e := testEngine(b)
	require.Equal(b, 0, ipvsadm.Run(e.ctl, []string{"-A", "-u", "192.168.1.110:53", "-s", "rr"}, nil, io.Discard, io.Discard))
	require.Equal(b, 0, ipvsadm.Run(e.ctl, []string{"-a", "-u", "192.168.1.110:53", "-r", "10.1.1.2:53", "-m"}, nil, io.Discard, io.Discard))
	e.syncServices(t0)
	bt := newBatch(8, 2)
	q := headertest.Spec{Src: clientAddr, Dst: natVIP, SrcPort: 40000, DstPort: 53, Payload: payload(4000)}
	var p parse.Packet
	f := headertest.UDP(q)
	parse.Frame(f, nil, &p)
	outs, lens := make([][]byte, 4), make([]int, 4)
	for i := range outs {
		outs[i] = make([]byte, 1600)
	}
	n := xmit.FragmentIPv4(outs, lens, f, &p, 1500)
	for k := range n { // the reassembly table is made at the first fragment
		receive(e, bt, 0, outs[k][:lens[k]])
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(f)))
	for i := 0; b.Loop(); i++ {
		for k := range n {
			fr := outs[k][:lens[k]]
			ip := header.IPv4(fr[header.EthernetSize:])
			ip.SetID(uint16(i))
			ip.SetChecksum(0)
			ip.SetChecksum(ip.CalculateChecksum())
			pk := &bt.rx[0]
			pk.Off, pk.Len = 64, len(fr)
			copy(pk.Buf[pk.Off:], fr)
			e.handle(bt, e.ifs[0], pk, t0)
		}
		for i := range bt.out {
			bt.out[i] = bt.out[i][:0]
		}
		bt.nspare = 0
	}
	if e.cnt.In < uint64(b.N) {
		b.Fatalf("forwarded %d of %d", e.cnt.In, b.N)
	}
}

// TestManySmallFragments: a 40000-byte datagram leaving by a 576-byte MTU
// takes 73 fragments, more than a GSO packet's segments; the worker's
// spare buffers hold them all.
func TestManySmallFragments(t *testing.T) {
	e := testEngine(t)
	e.ifs[1].mtu = 576
	b := newBatch(128, 2) // send queues that hold them all: the test has no sockets to flush to
	q := headertest.Spec{Src: clientAddr, Dst: tunVIP, SrcPort: 5353, DstPort: 53, Payload: payload(40000)}
	out := receive(e, b, 0, headertest.UDP(q))
	assert.Len(t, out[1], 73, "40028 bytes of IPIP payload in 552-byte pieces")
	outer := ipOf(joined(t, out[1], 576))
	want := q
	want.TTL = 63
	assert.Equal(t, ipOf(headertest.UDP(want)), outer[header.IPv4MinimumSize:])
	assert.Zero(t, e.cnt.Unsendable)
}
