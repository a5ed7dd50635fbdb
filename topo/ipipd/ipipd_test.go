package ipipd

import (
	"encoding/binary"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// frame builds what the packet socket hands over: a virtio-net header, then
// Ethernet, outer IPv4 (protocol 4) and the inner packet.
func frame(t testing.TB, vnet [vnetHdrLen]byte, outerFlags layers.IPv4Flag, fragOffset uint16) ([]byte, []byte) {
	inner := gopacket.NewSerializeBuffer()
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: []byte{192, 168, 1, 254}, DstIP: []byte{192, 168, 1, 110}}
	udp := &layers.UDP{SrcPort: 40000, DstPort: 80}
	require.NoError(t, udp.SetNetworkLayerForChecksum(ip))
	opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
	require.NoError(t, gopacket.SerializeLayers(inner, opts, ip, udp, gopacket.Payload("hello")))
	outer := gopacket.NewSerializeBuffer()
	require.NoError(t, gopacket.SerializeLayers(outer, opts,
		&layers.Ethernet{SrcMAC: make([]byte, 6), DstMAC: make([]byte, 6), EthernetType: layers.EthernetTypeIPv4},
		&layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolIPv4, Flags: outerFlags, FragOffset: fragOffset,
			SrcIP: []byte{192, 168, 1, 1}, DstIP: []byte{192, 168, 1, 2}},
		gopacket.Payload(inner.Bytes())))
	return append(vnet[:], outer.Bytes()...), inner.Bytes()
}

func TestDecap(t *testing.T) {
	t.Run("the inner packet follows a virtio-net header", func(t *testing.T) {
		f, inner := frame(t, [vnetHdrLen]byte{}, 0, 0)
		out, err := Decap(f)
		require.NoError(t, err)
		assert.Equal(t, make([]byte, vnetHdrLen), out[:vnetHdrLen])
		assert.Equal(t, inner, out[vnetHdrLen:])
	})
	t.Run("a partial checksum moves to the inner offsets", func(t *testing.T) {
		var h [vnetHdrLen]byte
		h[vnetFlags] = vnetFlagNeedsCsum
		binary.NativeEndian.PutUint16(h[vnetCsumStart:], ethHdrLen+20+20) // inner UDP header
		binary.NativeEndian.PutUint16(h[8:], 6)
		f, _ := frame(t, h, 0, 0)
		out, err := Decap(f)
		require.NoError(t, err)
		assert.Equal(t, byte(vnetFlagNeedsCsum), out[vnetFlags])
		assert.Equal(t, uint16(20), binary.NativeEndian.Uint16(out[vnetCsumStart:]))
		assert.Equal(t, uint16(6), binary.NativeEndian.Uint16(out[8:]))
	})
	t.Run("a checksum start inside the outer header is refused", func(t *testing.T) {
		var h [vnetHdrLen]byte
		h[vnetFlags] = vnetFlagNeedsCsum
		binary.NativeEndian.PutUint16(h[vnetCsumStart:], 10)
		f, _ := frame(t, h, 0, 0)
		_, err := Decap(f)
		assert.ErrorIs(t, err, ErrOffload)
	})
	t.Run("outer fragments are counted, not delivered", func(t *testing.T) {
		f, _ := frame(t, [vnetHdrLen]byte{}, layers.IPv4MoreFragments, 0)
		_, err := Decap(f)
		assert.ErrorIs(t, err, ErrFragment)
		f, _ = frame(t, [vnetHdrLen]byte{}, 0, 8)
		_, err = Decap(f)
		assert.ErrorIs(t, err, ErrFragment)
	})
	t.Run("truncated and foreign frames", func(t *testing.T) {
		f, _ := frame(t, [vnetHdrLen]byte{}, 0, 0)
		_, err := Decap(f[:40])
		assert.ErrorIs(t, err, ErrShort)
		_, err = Decap(f[:len(f)-3])
		assert.ErrorIs(t, err, ErrShort)
		g, _ := frame(t, [vnetHdrLen]byte{}, 0, 0)
		g[vnetHdrLen+ethHdrLen+9] = 17
		_, err = Decap(g)
		assert.ErrorIs(t, err, ErrNotIPIP)
		h, _ := frame(t, [vnetHdrLen]byte{}, 0, 0)
		h[vnetHdrLen+ethHdrLen+20] = 0x65 // inner version 6
		_, err = Decap(h)
		assert.ErrorIs(t, err, ErrNotIPIP)
	})
}

func BenchmarkDecap(b *testing.B) {
	f, _ := frame(b, [vnetHdrLen]byte{}, 0, 0)
	buf := make([]byte, len(f))
	b.ReportAllocs()
	for b.Loop() {
		copy(buf, f)
		if _, err := Decap(buf); err != nil {
			b.Fatal(err)
		}
	}
}

func FuzzDecap(f *testing.F) {
	good, _ := frame(f, [vnetHdrLen]byte{}, 0, 0)
	f.Add(good)
	f.Add(good[:30])
	f.Fuzz(func(t *testing.T, b []byte) {
		out, err := Decap(b)
		if err == nil {
			require.GreaterOrEqual(t, len(out), vnetHdrLen+20)
		}
	})
}
