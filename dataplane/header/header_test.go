package header

import (
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// tcpPacket builds an IPv4/TCP packet with gopacket (the reference) and
// returns it with its checksums complete.
func tcpPacket(t testing.TB, src, dst netip.Addr, sport, dport uint16, payload []byte) []byte {
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolTCP, SrcIP: src.AsSlice(), DstIP: dst.AsSlice(), Flags: layers.IPv4DontFragment}
	tcp := &layers.TCP{SrcPort: layers.TCPPort(sport), DstPort: layers.TCPPort(dport), Seq: 1000, ACK: true, Ack: 7, Window: 512}
	require.NoError(t, tcp.SetNetworkLayerForChecksum(ip))
	buf := gopacket.NewSerializeBuffer()
	require.NoError(t, gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ip, tcp, gopacket.Payload(payload)))
	return buf.Bytes()
}

func TestChecksumMatchesGopacket(t *testing.T) {
	src, dst := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("192.168.7.9")
	for _, n := range []int{0, 1, 7, 8, 9, 1000, 1461} {
		payload := make([]byte, n)
		for i := range payload {
			payload[i] = byte(i*7 + n)
		}
		p := tcpPacket(t, src, dst, 40000, 80, payload)
		ip := IPv4(p)
		assert.True(t, ip.IsChecksumValid(), "ip checksum of %d-byte payload", n)
		assert.Equal(t, ip.Checksum(), ip.CalculateChecksum())
		seg := ip.Payload()
		sum := PseudoHeaderChecksum(ProtocolTCP, src, dst, uint32(len(seg)))
		assert.Equal(t, uint16(0xffff), Checksum(seg, sum), "tcp checksum of %d-byte payload", n)
	}
}

// TestIncrementalUpdateEqualsRecompute rewrites addresses and ports of
// random TCP packets with the RFC 1624 helpers and compares with a full
// recomputation, for full and CHECKSUM_PARTIAL checksums.
func TestIncrementalUpdateEqualsRecompute(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 2000 {
		var a, b, c [4]byte
		binary.BigEndian.PutUint32(a[:], rng.Uint32())
		binary.BigEndian.PutUint32(b[:], rng.Uint32())
		binary.BigEndian.PutUint32(c[:], rng.Uint32())
		if i%5 == 0 { // exercise 0x0000/0xffff words
			c = [4]byte{0xff, 0xff, 0, 0}
		}
		src, dst, rip := netip.AddrFrom4(a), netip.AddrFrom4(b), netip.AddrFrom4(c)
		sport, dport, rport := uint16(rng.Uint32()), uint16(rng.Uint32()), uint16(rng.Uint32())
		payload := make([]byte, rng.IntN(64))
		for j := range payload {
			payload[j] = byte(rng.Uint32())
		}
		p := tcpPacket(t, src, dst, sport, dport, payload)
		ip := IPv4(p)
		tcp := TCP(ip.Payload())

		// Full checksum.
		d := AddressDelta(dst, rip)
		ip.SetDestination(rip)
		ip.SetChecksum(UpdateChecksum(ip.Checksum(), d))
		tcp.SetChecksum(UpdateChecksum(tcp.Checksum(), d.Add(WordDelta(dport, rport))))
		tcp.SetDestinationPort(rport)
		require.True(t, ip.IsChecksumValid())
		want := tcpPacket(t, src, rip, sport, rport, payload)
		require.Equal(t, want, p, "case %d", i)

		// CHECKSUM_PARTIAL: the field holds the pseudo-header sum.
		seg := TCP(IPv4(want).Payload())
		seg.SetChecksum(PseudoHeaderChecksum(ProtocolTCP, src, rip, uint32(len(seg))))
		dst2 := netip.AddrFrom4([4]byte{10, byte(i), 0, 9})
		seg.SetChecksum(UpdatePartialChecksum(seg.Checksum(), AddressDelta(rip, dst2)))
		assert.Equal(t, PseudoHeaderChecksum(ProtocolTCP, src, dst2, uint32(len(seg))), seg.Checksum(), "case %d", i)
	}
}

func TestDecrementTTL(t *testing.T) {
	p := tcpPacket(t, netip.MustParseAddr("1.2.3.4"), netip.MustParseAddr("5.6.7.8"), 1, 2, nil)
	ip := IPv4(p)
	for ttl := 64; ttl > 0; ttl-- {
		ip.DecrementTTL()
		require.Equal(t, uint8(ttl-1), ip.TTL())
		require.True(t, ip.IsChecksumValid(), "ttl %d", ttl-1)
	}
}

func TestIPv4Encode(t *testing.T) {
	b := make(IPv4, 20)
	b.Encode(&IPv4Fields{TOS: 0xb9, TotalLength: 1500, ID: 0xbeef, Flags: IPv4FlagDF, TTL: 3, Protocol: IPv4ProtocolIPIP,
		Src: netip.MustParseAddr("10.1.1.1"), Dst: netip.MustParseAddr("10.2.2.2")})
	pkt := gopacket.NewPacket(b, layers.LayerTypeIPv4, gopacket.Default)
	ip := pkt.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
	assert.Equal(t, uint8(0xb9), ip.TOS)
	assert.Equal(t, uint16(0xbeef), ip.Id)
	assert.Equal(t, layers.IPv4DontFragment, ip.Flags)
	assert.Equal(t, layers.IPProtocolIPv4, ip.Protocol)
	assert.True(t, b.IsChecksumValid())
	assert.Equal(t, 20, b.HeaderLength())
	assert.False(t, b.IsFragment())
}

func TestSCTPChecksumMatchesGopacket(t *testing.T) {
	s := &layers.SCTP{SrcPort: 5000, DstPort: 6000, VerificationTag: 0x01020304}
	init := &layers.SCTPInit{SCTPChunk: layers.SCTPChunk{Type: layers.SCTPChunkTypeInit}, InitiateTag: 9, AdvertisedReceiverWindowCredit: 1 << 16, OutboundStreams: 1, InboundStreams: 1, InitialTSN: 77}
	buf := gopacket.NewSerializeBuffer()
	require.NoError(t, gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, s, init))
	b := SCTP(buf.Bytes())
	assert.Equal(t, b.Checksum(), b.CalculateChecksum())
	assert.Equal(t, SCTPChunkInit, b.FirstChunkType())
	want := b.Checksum()
	b.SetDestinationPort(7000)
	b.UpdateChecksum()
	assert.NotEqual(t, want, b.Checksum())
	b.SetDestinationPort(6000)
	b.UpdateChecksum()
	assert.Equal(t, want, b.Checksum())
}

func TestIPv6UpperLayer(t *testing.T) {
	src, dst := netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("2001:db8::2")
	base := func(next uint8, ext []byte) IPv6 {
		b := make(IPv6, 40+len(ext)+8)
		b.Encode(&IPv6Fields{PayloadLength: uint16(len(ext) + 8), NextHeader: next, HopLimit: 64, Src: src, Dst: dst})
		copy(b[40:], ext)
		return b
	}
	hop := []byte{IPv6Routing, 0, 1, 4, 0, 0, 0, 0}                       // hop-by-hop, 8 bytes, then routing
	rt := []byte{ProtocolAH, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0} // routing, 16 bytes, then AH
	ah := []byte{IPv6Fragment, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}           // AH, (1+2)*4 = 12 bytes, then fragment
	fragFirst := []byte{ProtocolTCP, 0, 0, 1, 0, 0, 0, 1}                 // offset 0, M=1
	fragLater := []byte{ProtocolUDP, 0, 0x05, 0x89, 0, 0, 0, 1}           // offset 0x588 = 1416, M=1
	join := func(parts ...[]byte) (out []byte) {
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	tests := []struct {
		name string
		pkt  IPv6
		want IPv6UpperLayer
		err  error
	}{
		{"no extension headers", base(ProtocolTCP, nil), IPv6UpperLayer{Protocol: ProtocolTCP, Offset: 40}, nil},
		{"hop-by-hop, routing, AH then first fragment", base(IPv6HopByHop, join(hop, rt, ah, fragFirst)),
			IPv6UpperLayer{Protocol: ProtocolTCP, Offset: 40 + 8 + 16 + 12 + 8, Fragment: true, MoreFragments: true}, nil},
		{"a later fragment stops at the fragment header", base(IPv6Fragment, fragLater),
			IPv6UpperLayer{Protocol: ProtocolUDP, Offset: 48, Fragment: true, FragmentOffset: 1416, MoreFragments: true}, nil},
		{"no next header", base(IPv6NoNextHeader, nil), IPv6UpperLayer{Protocol: IPv6NoNextHeader, Offset: 40}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.pkt.UpperLayer(len(tt.pkt))
			require.ErrorIs(t, err, tt.err)
			assert.Equal(t, tt.want, got)
		})
	}
	t.Run("a truncated chain is an error", func(t *testing.T) {
		p := base(IPv6HopByHop, join(hop, rt))
		_, err := p.UpperLayer(40 + 8 + 4)
		assert.ErrorIs(t, err, ErrIPv6ExtTruncated)
	})
}

func TestVirtioNetHdrRoundTrip(t *testing.T) {
	v := make(VirtioNetHdr, VirtioNetHdrSize)
	v.SetFlags(VirtioNetHdrFNeedsCsum)
	v.SetGSOType(VirtioNetHdrGSOTCPv4 | VirtioNetHdrGSOECN)
	v.SetHdrLen(66)
	v.SetGSOSize(1448)
	v.SetCsumStart(34)
	v.SetCsumOffset(TCPChecksumOffset)
	assert.True(t, v.NeedsCsum())
	assert.True(t, v.IsGSO())
	assert.Equal(t, []uint16{66, 1448, 34, 16}, []uint16{v.HdrLen(), v.GSOSize(), v.CsumStart(), v.CsumOffset()})
	v.Clear()
	assert.False(t, v.IsGSO())
	assert.False(t, v.NeedsCsum())
}

func BenchmarkChecksum1500(b *testing.B) {
	buf := make([]byte, 1500)
	b.SetBytes(1500)
	for b.Loop() {
		Checksum(buf, 0)
	}
}
