package parse

import (
	"net/netip"
	"testing"

	"github.com/lvslab/lvslab/dataplane/header"
	ht "github.com/lvslab/lvslab/dataplane/header/headertest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var (
	cip  = netip.MustParseAddr("192.168.1.10")
	vip  = netip.MustParseAddr("192.168.1.110")
	rip  = netip.MustParseAddr("10.0.0.2")
	cip6 = netip.MustParseAddr("2001:db8:1::10")
	vip6 = netip.MustParseAddr("2001:db8:1::110")
)

func TestFrameClassifiesWellFormedPackets(t *testing.T) {
	syn := ht.TCP(ht.Spec{Src: cip, Dst: vip, SrcPort: 40000, DstPort: 443, TCPFlags: header.TCPFlagSYN})
	udp := ht.UDP(ht.Spec{Src: cip, Dst: vip, SrcPort: 5353, DstPort: 53, Payload: []byte("q")})
	tests := []struct {
		name  string
		frame []byte
		want  Packet
	}{
		{"a TCP SYN to the VIP", syn, Packet{Kind: KindTransport, Flow: Flow{6, cip, vip, 40000, 443}, TCPFlags: header.TCPFlagSYN, L3Off: 14, L4Off: 34, Len: 40, TTL: 64}},
		{"a UDP datagram", udp, Packet{Kind: KindTransport, Flow: Flow{17, cip, vip, 5353, 53}, L3Off: 14, L4Off: 34, Len: 29, TTL: 64}},
		{"an SCTP INIT", ht.SCTPInit(ht.Spec{Src: cip, Dst: vip, SrcPort: 7, DstPort: 9}),
			Packet{Kind: KindTransport, Flow: Flow{132, cip, vip, 7, 9}, SCTPChunk: header.SCTPChunkInit, L3Off: 14, L4Off: 34, Len: 52, TTL: 64}},
		{"an IPv6 TCP segment", ht.TCP(ht.Spec{Src: cip6, Dst: vip6, SrcPort: 1, DstPort: 80, TCPFlags: header.TCPFlagACK}),
			Packet{Kind: KindTransport, Flow: Flow{6, cip6, vip6, 1, 80}, TCPFlags: header.TCPFlagACK, L3Off: 14, L4Off: 54, Len: 60, TTL: 64}},
		{"an ICMP port unreachable quoting a UDP datagram", ht.ICMPError(rip, cip, 3, 3, 0, udp, 0),
			Packet{Kind: KindICMPError, Flow: Flow{Proto: 1, Src: rip, Dst: cip}, L3Off: 14, L4Off: 34, Len: 20 + 8 + 29, TTL: 64,
				ICMPType: 3, ICMPCode: 3, Inner: Flow{17, cip, vip, 5353, 53}, InnerL3Off: 42, InnerL4Off: 62}},
		{"an ICMPv6 packet too big quoting TCP", ht.ICMPError(vip6, cip6, 2, 0, 1280, ht.TCP(ht.Spec{Src: cip6, Dst: vip6, SrcPort: 2, DstPort: 3}), 0),
			Packet{Kind: KindICMPError, Flow: Flow{Proto: 58, Src: vip6, Dst: cip6}, L3Off: 14, L4Off: 54, Len: 40 + 8 + 60, TTL: 64,
				ICMPType: 2, Inner: Flow{6, cip6, vip6, 2, 3}, InnerL3Off: 62, InnerL4Off: 102}},
		{"an echo request is not the director's", ht.ICMPError(cip, vip, 8, 0, 1, nil14, 0),
			Packet{Kind: KindOther, Flow: Flow{Proto: 1, Src: cip, Dst: vip}, L3Off: 14, L4Off: 34, Len: 28, TTL: 64}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var p Packet
			require.Equal(t, OK, Frame(tt.frame, nil, &p))
			assert.Equal(t, tt.want, p)
		})
	}
}

var nil14 = make([]byte, 14) // an empty quote: an Ethernet header and no IP packet

func TestFrameRejectsMalformedInput(t *testing.T) {
	syn := func() []byte {
		return ht.TCP(ht.Spec{Src: cip, Dst: vip, SrcPort: 40000, DstPort: 443, TCPFlags: header.TCPFlagSYN})
	}
	udp := ht.UDP(ht.Spec{Src: cip, Dst: vip, SrcPort: 5353, DstPort: 53, Payload: []byte("q")})
	mod := func(b []byte, f func(b []byte)) []byte { f(b); return b }
	fixIP := func(b []byte) { ip := header.IPv4(b[14:]); ip.SetChecksum(0); ip.SetChecksum(ip.CalculateChecksum()) }
	tests := []struct {
		name  string
		frame []byte
		want  Reason
	}{
		{"an ARP frame is not IP", mod(syn(), func(b []byte) { header.Ethernet(b).SetType(header.EtherTypeARP) }), NotIP},
		{"a frame shorter than Ethernet", syn()[:10], Truncated},
		{"an IPv4 header cut short", syn()[:30], Truncated},
		{"version 6 in an IPv4 ethertype", mod(syn(), func(b []byte) { b[14] = 0x65 }), BadVersion},
		{"IHL 4", mod(syn(), func(b []byte) { b[14] = 0x44 }), BadIHL},
		{"total length beyond the frame", mod(syn(), func(b []byte) { header.IPv4(b[14:]).SetTotalLength(1500); fixIP(b) }), BadTotalLength},
		{"total length below the header", mod(syn(), func(b []byte) { header.IPv4(b[14:]).SetTotalLength(12); fixIP(b) }), BadTotalLength},
		{"a bad IP header checksum", mod(syn(), func(b []byte) { b[24] ^= 1 }), BadIPChecksum},
		{"a first fragment", mod(syn(), func(b []byte) { header.IPv4(b[14:]).SetFlagsFragmentOffset(header.IPv4FlagMF); fixIP(b) }), Fragment},
		{"a later fragment", mod(syn(), func(b []byte) { header.IPv4(b[14:]).SetFlagsFragmentOffset(3); fixIP(b) }), Fragment},
		{"a TCP header cut by the total length", mod(syn(), func(b []byte) { header.IPv4(b[14:]).SetTotalLength(30); fixIP(b) }), Truncated},
		{"a TCP data offset of 4", mod(syn(), func(b []byte) { b[34+12] = 0x40 }), BadL4Header},
		{"a TCP data offset past the segment", mod(syn(), func(b []byte) { b[34+12] = 0xf0 }), BadL4Header},
		{"a UDP length of 4", mod(append([]byte(nil), udp...), func(b []byte) { header.UDP(b[34:]).SetLength(4) }), BadL4Header},
		{"an unknown protocol", mod(syn(), func(b []byte) { header.IPv4(b[14:]).SetProtocol(47); fixIP(b) }), UnknownProtocol},
		{"ICMPv6 inside IPv4", mod(syn(), func(b []byte) { header.IPv4(b[14:]).SetProtocol(58); fixIP(b) }), UnknownProtocol},
		{"an ICMP error with a bad checksum", mod(ht.ICMPError(rip, cip, 3, 3, 0, udp, 0), func(b []byte) { b[40] ^= 0xff }), BadICMPChecksum},
		{"an ICMP error quoting 12 bytes", ht.ICMPError(rip, cip, 3, 3, 0, udp, 12), ICMPQuoteGarbage},
		{"an ICMP error quoting IP without ports", ht.ICMPError(rip, cip, 3, 3, 0, udp, 24), ICMPQuoteGarbage},
		{"an ICMP error quoting garbage", ht.ICMPError(rip, cip, 11, 0, 0, append(make([]byte, 14), []byte("this is not an IP header at all")...), 0), ICMPQuoteGarbage},
		{"an ICMP error quoting ICMP", ht.ICMPError(rip, cip, 3, 1, 0, ht.ICMPError(cip, vip, 8, 0, 0, nil14, 0), 0), ICMPQuoteGarbage},
		{"an ICMP header cut short", ht.ICMPError(rip, cip, 3, 3, 0, nil14, 0)[:14+20+4], BadTotalLength},
		{"IPv6 payload length 0", mod(ht.TCP(ht.Spec{Src: cip6, Dst: vip6}), func(b []byte) { header.IPv6(b[14:]).SetPayloadLength(0) }), BadTotalLength},
		{"an IPv6 hop-by-hop header past the end", mod(ht.TCP(ht.Spec{Src: cip6, Dst: vip6}), func(b []byte) { header.IPv6(b[14:]).SetNextHeader(0); b[54+1] = 9 }), BadExtHeader},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var p Packet
			got := Frame(tt.frame, nil, &p)
			assert.Equal(t, tt.want, got, "got %v", got)
		})
	}
}

func TestFrameChecksOffloadDescription(t *testing.T) {
	syn := ht.TCP(ht.Spec{Src: cip, Dst: vip, SrcPort: 40000, DstPort: 443, TCPFlags: header.TCPFlagSYN})
	v := func(flags, gso uint8, start, off, size uint16) header.VirtioNetHdr {
		h := make(header.VirtioNetHdr, header.VirtioNetHdrSize)
		h.SetFlags(flags)
		h.SetGSOType(gso)
		h.SetCsumStart(start)
		h.SetCsumOffset(off)
		h.SetGSOSize(size)
		return h
	}
	tests := []struct {
		name string
		vnet header.VirtioNetHdr
		want Reason
	}{
		{"no offload", v(0, 0, 0, 0, 0), OK},
		{"checksum partial at the TCP header", v(1, 0, 34, 16, 0), OK},
		{"TCPv4 GSO", v(1, header.VirtioNetHdrGSOTCPv4|header.VirtioNetHdrGSOECN, 34, 16, 1448), OK},
		{"checksum start off the L4 header", v(1, 0, 30, 16, 0), BadVnetHdr},
		{"the UDP checksum offset on TCP", v(1, 0, 34, 6, 0), BadVnetHdr},
		{"GSO without checksum offload", v(0, header.VirtioNetHdrGSOTCPv4, 0, 0, 1448), BadVnetHdr},
		{"TCPv6 GSO on IPv4", v(1, header.VirtioNetHdrGSOTCPv6, 34, 16, 1448), BadVnetHdr},
		{"GSO size 0", v(1, header.VirtioNetHdrGSOTCPv4, 34, 16, 0), BadVnetHdr},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var p Packet
			assert.Equal(t, tt.want, Frame(syn, tt.vnet, &p))
		})
	}
}

func TestReasonNamesAndDrop(t *testing.T) {
	for r := range NumReasons {
		assert.NotEmpty(t, r.String())
	}
	assert.False(t, UnknownProtocol.Drop())
	assert.False(t, ICMPQuoteGarbage.Drop())
	assert.True(t, BadIPChecksum.Drop())
	var c, d Counters
	c.Add(Truncated)
	c.Add(Truncated)
	d.Add(BadIHL)
	d.Merge(&c)
	assert.Equal(t, uint64(2), d[Truncated])
	assert.Equal(t, uint64(1), d[BadIHL])
}

func BenchmarkFrameTCP(b *testing.B) {
	f := ht.TCP(ht.Spec{Src: cip, Dst: vip, SrcPort: 40000, DstPort: 443, TCPFlags: header.TCPFlagACK, Payload: make([]byte, 1400)})
	var p Packet
	b.ReportAllocs()
	for b.Loop() {
		if Frame(f, nil, &p) != OK {
			b.Fatal("parse failed")
		}
	}
}
