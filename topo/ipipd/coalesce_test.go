package ipipd

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// segment builds a decapsulated TCP segment (empty virtio-net header, then
// inner IPv4) of the flow 192.168.1.254:40000 → 192.168.1.110:80 with
// timestamps, as Decap hands it on.
func segment(t testing.TB, seq uint32, payload []byte, psh, fin bool, srcPort uint16) []byte {
	buf := gopacket.NewSerializeBuffer()
	ip := &layers.IPv4{Version: 4, TTL: 64, Flags: layers.IPv4DontFragment, Protocol: layers.IPProtocolTCP,
		SrcIP: []byte{192, 168, 1, 254}, DstIP: []byte{192, 168, 1, 110}}
	tcp := &layers.TCP{SrcPort: layers.TCPPort(srcPort), DstPort: 80, Seq: seq, Ack: 7777, ACK: true, PSH: psh, FIN: fin, Window: 512,
		Options: []layers.TCPOption{{OptionType: layers.TCPOptionKindNop}, {OptionType: layers.TCPOptionKindNop},
			{OptionType: layers.TCPOptionKindTimestamps, OptionLength: 10, OptionData: []byte{0, 0, 0, 1, 0, 0, 0, 2}}}}
	require.NoError(t, tcp.SetNetworkLayerForChecksum(ip))
	require.NoError(t, gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true},
		ip, tcp, gopacket.Payload(payload)))
	return append(make([]byte, vnetHdrLen), buf.Bytes()...)
}

func payload(n int, b byte) []byte { return bytes.Repeat([]byte{b}, n) }

// feed runs packets through a coalescer as Decapsulator.decap does and
// returns what it writes, in order.
func feed(c *coalescer, pkts ...[]byte) [][]byte {
	var out [][]byte
	emit := func(p []byte) { out = append(out, append([]byte(nil), p...)) }
	for _, p := range pkts {
		if c.merge(p) {
			continue
		}
		if q := c.take(); q != nil {
			emit(q)
		}
		if !c.start(p) {
			emit(p)
		}
	}
	if q := c.take(); q != nil {
		emit(q)
	}
	return out
}

func TestCoalescerMergesATrainOfSegments(t *testing.T) {
	var segs [][]byte
	var want []byte
	for i := range 5 {
		n := 1000
		if i == 4 {
			n = 500
		}
		p := payload(n, byte('a'+i))
		want = append(want, p...)
		segs = append(segs, segment(t, 1000+uint32(i)*1000, p, i == 4, false, 40000))
	}
	out := feed(newCoalescer(), segs...)
	require.Len(t, out, 1, "one packet for the kernel")
	m := out[0]

	h := m[:vnetHdrLen]
	assert.Equal(t, byte(vnetFlagNeedsCsum), h[vnetFlags])
	assert.Equal(t, byte(vnetGSOTCPv4), h[vnetGSOType])
	assert.Equal(t, uint16(20+32), binary.NativeEndian.Uint16(h[vnetHdrLenOff:]), "headers")
	assert.Equal(t, uint16(1000), binary.NativeEndian.Uint16(h[vnetGSOSize:]), "the first segment's payload")
	assert.Equal(t, uint16(20), binary.NativeEndian.Uint16(h[vnetCsumStart:]))
	assert.Equal(t, uint16(16), binary.NativeEndian.Uint16(h[vnetCsumOffset:]))

	ip := m[vnetHdrLen:]
	assert.Equal(t, len(ip), int(binary.BigEndian.Uint16(ip[2:])), "IPv4 total length")
	assert.Equal(t, uint16(0xffff), fold(sum(ip[:20], 0)), "IPv4 header checksum")
	pkt := gopacket.NewPacket(ip, layers.LayerTypeIPv4, gopacket.Default)
	tcp := pkt.Layer(layers.LayerTypeTCP).(*layers.TCP)
	assert.Equal(t, uint32(1000), tcp.Seq)
	assert.True(t, tcp.ACK)
	assert.True(t, tcp.PSH, "the last segment's PSH")
	assert.Equal(t, want, tcp.Payload)

	// Complete the partial checksum as the kernel would: the result checks.
	seg := ip[20:]
	binary.BigEndian.PutUint16(seg[16:], ^fold(sum(seg, 0)))
	pseudo := sum(ip[12:20], 6+uint32(len(seg)))
	assert.Equal(t, uint16(0xffff), fold(sum(seg, pseudo)), "TCP checksum once completed")
}

func TestCoalescerKeepsWhatMustNotMerge(t *testing.T) {
	p := func(n int) []byte { return payload(n, 'x') }
	for _, tc := range []struct {
		name string
		pkts [][]byte
		want []int // payload bytes of each packet written
	}{
		{"a gap in the sequence", [][]byte{segment(t, 0, p(100), false, false, 1), segment(t, 200, p(100), false, false, 1)}, []int{100, 100}},
		{"another flow between", [][]byte{segment(t, 0, p(100), false, false, 1), segment(t, 0, p(100), false, false, 2),
			segment(t, 100, p(100), false, false, 1)}, []int{100, 100, 100}},
		{"a short segment ends the packet", [][]byte{segment(t, 0, p(100), false, false, 1), segment(t, 100, p(50), false, false, 1),
			segment(t, 150, p(100), false, false, 1)}, []int{150, 100}},
		{"a longer segment does not join", [][]byte{segment(t, 0, p(100), false, false, 1), segment(t, 100, p(200), false, false, 1)}, []int{100, 200}},
		{"PSH ends the packet", [][]byte{segment(t, 0, p(100), true, false, 1), segment(t, 100, p(100), false, false, 1)}, []int{100, 100}},
		{"FIN goes alone", [][]byte{segment(t, 0, p(100), false, false, 1), segment(t, 100, p(100), false, true, 1),
			segment(t, 200, p(100), false, false, 1)}, []int{100, 100, 100}},
	} {
		out := feed(newCoalescer(), tc.pkts...)
		var got []int
		for _, o := range out {
			pkt := gopacket.NewPacket(o[vnetHdrLen:], layers.LayerTypeIPv4, gopacket.Default)
			got = append(got, len(pkt.Layer(layers.LayerTypeTCP).(*layers.TCP).Payload))
		}
		assert.Equal(t, tc.want, got, tc.name)
	}
	// A packet written alone keeps its bytes and virtio-net header.
	one := segment(t, 0, p(100), false, false, 1)
	one[vnetFlags] = vnetFlagNeedsCsum
	assert.Equal(t, [][]byte{one}, feed(newCoalescer(), one))
}

func BenchmarkCoalesce(b *testing.B) {
	var segs [][]byte
	for i := range 45 {
		segs = append(segs, segment(b, uint32(i)*1448, payload(1448, 'x'), false, false, 40000))
	}
	c := newCoalescer()
	b.SetBytes(45 * 1448)
	b.ReportAllocs()
	for b.Loop() {
		for _, s := range segs {
			if !c.merge(s) {
				c.take()
				c.start(s)
			}
		}
		if c.take() == nil {
			b.Fatal("nothing merged")
		}
	}
}

func FuzzCoalesce(f *testing.F) {
	f.Add(segment(f, 0, payload(100, 'x'), false, false, 1), segment(f, 100, payload(100, 'y'), true, false, 1))
	f.Fuzz(func(t *testing.T, a, b []byte) {
		c := newCoalescer()
		for _, o := range feed(c, a, b, a) {
			require.LessOrEqual(t, len(o), vnetHdrLen+maxIPTotal)
		}
	})
}
