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

	"github.com/lvslab/lvslab/dataplane/header"
	"github.com/lvslab/lvslab/dataplane/header/headertest"
	"github.com/lvslab/lvslab/dataplane/ipvsadm"
)

// markVIP is an address only a marking rule covers.
var markVIP = netip.MustParseAddr("192.168.1.120")

// fromQueue hands an IP packet to the queue path as the kernel queued it,
// and returns whether the engine took it and what it sent, per interface.
func fromQueue(e *Engine, b *batch, ifindex int, frame []byte, mark uint32) (bool, [2][][]byte) {
	took := e.queued(b, frame[header.EthernetSize:], ifindex, clientMAC[:], mark, t0)
	var out [2][][]byte
	for i, q := range b.out {
		for _, p := range q {
			out[i] = append(out[i], append([]byte(nil), p.Frame()...))
		}
		clear(q)
		b.out[i] = q[:0]
	}
	b.nspare = 0
	return took, out
}

func TestQueuePath(t *testing.T) {
	e := testEngine(t)
	require.Equal(t, 0, ipvsadm.Run(e.ctl, []string{"-R"}, strings.NewReader("-A -f 1 -s rr\n-a -f 1 -r 10.1.1.2 -m\n"), io.Discard, io.Discard))
	e.syncServices(t0)
	assert.Equal(t, []uint32{1}, e.marks)
	b := newBatch(4, 2)

	// A marked SYN to an address no service has: NAT to the real server,
	// the client's port kept (the destination has port 0), the packet
	// dropped in the kernel.
	syn := headertest.Spec{Src: clientAddr, Dst: markVIP, SrcPort: 40000, DstPort: 443, TCPFlags: header.TCPFlagSYN, DF: true}
	took, out := fromQueue(e, b, 1, headertest.TCP(syn), 1)
	assert.True(t, took)
	want := syn
	want.Dst, want.TTL = rs1, 63
	require.Len(t, out[1], 1)
	assert.Equal(t, relink(headertest.TCP(want), internalMAC, rs1MAC), out[1][0])
	assert.Equal(t, uint64(1), e.cnt.Queued)
	assert.Equal(t, map[netip.Addr]bool{markVIP: true}, e.markVIPs, "the virtual address learnt, not the real server's")

	// Its reply comes by the tap, to the client's MAC the queue path learnt.
	synack := headertest.Spec{Src: rs1, Dst: clientAddr, SrcPort: 443, DstPort: 40000, TCPFlags: header.TCPFlagSYN | header.TCPFlagACK, DF: true}
	tapped := receive(e, b, 1, headertest.TCP(synack))
	want = synack
	want.Src, want.TTL = markVIP, 63
	require.Len(t, tapped[0], 1)
	assert.Equal(t, relink(headertest.TCP(want), publicMAC, clientMAC), tapped[0][0])

	// An ICMP error to that address about the reply the client got is the
	// tap's, mark or not: relayed to the real server, rewritten to quote
	// its own packet.
	quoted := synack
	quoted.Src, quoted.TTL = markVIP, 63
	router := netip.MustParseAddr("192.168.1.253")
	tapped = receive(e, b, 0, headertest.ICMPError(router, markVIP, 3, 4, 1400, headertest.TCP(quoted), 0))
	require.Len(t, tapped[1], 1)
	icmp := headertest.Decode(tapped[1][0])
	ip := icmp.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
	assert.Equal(t, rs1.AsSlice(), []byte(ip.DstIP.To4()), "to the real server")
	assert.Equal(t, uint64(1), e.cnt.ICMPIn)

	other := syn
	other.SrcPort = 40002
	for _, tc := range []struct {
		name    string
		ifindex int
		spec    headertest.Spec
		mark    uint32
	}{
		{"a mark no service has", 1, other, 2},
		{"an ACK of no connection (the director's stack answers a RST)", 1, headertest.Spec{Src: clientAddr, Dst: markVIP, SrcPort: 40001, DstPort: 443, TCPFlags: header.TCPFlagACK}, 1},
		{"an interface the engine does not forward on", 9, other, 1},
	} {
		took, out := fromQueue(e, b, tc.ifindex, headertest.TCP(tc.spec), tc.mark)
		assert.False(t, took, "%s: accepted, the kernel goes on with it", tc.name)
		assert.Empty(t, out[0], tc.name)
		assert.Empty(t, out[1], tc.name)
	}
}

// TestTapAndQueueSplit: with fwmark services about, a connection's SYN
// comes by the queue path (with its mark) and its later TCP packets by the
// tap path (the kernel drops the marked ones after the queue rule), GSO
// super-packets whole; a VIP's UDP is the queue path's alone. The address
// service of the same VIP stays the tap's.
func TestTapAndQueueSplit(t *testing.T) {
	e := testEngine(t)
	require.Equal(t, 0, ipvsadm.Run(e.ctl, []string{"-R"}, strings.NewReader("-A -f 1 -s rr\n-a -f 1 -r 10.1.1.3 -m\n"), io.Discard, io.Discard))
	e.syncServices(t0)
	e.fwm = &markQueue{}
	b := newBatch(4, 2)

	syn := headertest.Spec{Src: clientAddr, Dst: natVIP, SrcPort: 40000, DstPort: 443, TCPFlags: header.TCPFlagSYN, DF: true}
	tapped := receive(e, b, 0, headertest.TCP(syn))
	assert.Empty(t, tapped[1], "the tap leaves a SYN to a VIP to the queue")
	took, out := fromQueue(e, b, 1, headertest.TCP(syn), 1)
	require.True(t, took)
	require.Len(t, out[1], 1, "the queue path forwards the SYN")

	ack := syn
	ack.TCPFlags = header.TCPFlagACK
	tapped = receive(e, b, 0, headertest.TCP(ack))
	want := ack
	want.Dst, want.TTL = rs2, 63
	require.Len(t, tapped[1], 1, "the tap forwards the connection's next packet")
	assert.Equal(t, relink(headertest.TCP(want), internalMAC, rs2MAC), tapped[1][0])

	stray := ack
	stray.SrcPort = 40001
	tapped = receive(e, b, 0, headertest.TCP(stray))
	assert.Empty(t, tapped[1], "a packet of no connection is not forwarded")

	udp := headertest.Spec{Src: clientAddr, Dst: markVIP, SrcPort: 5353, DstPort: 53, Payload: []byte("query")}
	tapped = receive(e, b, 0, headertest.UDP(udp))
	assert.Empty(t, tapped[1])
	took, out = fromQueue(e, b, 1, headertest.UDP(udp), 1)
	assert.True(t, took)
	assert.Len(t, out[1], 1, "udp by the queue path")
	later := t0.Add(3 * time.Second) // the counters are the estimator's, folded every 2 s
	e.core.Advance(later)
	st := e.core.Services(later)
	var inPkts uint64
	for _, s := range st {
		if s.Config.Key.FWMark == 1 {
			inPkts = s.Stats.InPkts
		}
	}
	assert.Equal(t, uint64(3), inPkts, "SYN, ACK and the datagram, each counted once")

	http := syn
	http.DstPort = 80
	tapped = receive(e, b, 0, headertest.TCP(http))
	assert.Len(t, tapped[1], 1, "the address service's SYN is the tap's")
}
