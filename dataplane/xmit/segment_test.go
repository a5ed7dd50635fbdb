package xmit

import (
	"testing"

	"github.com/gopacket/gopacket/layers"
	"github.com/lvslab/lvslab/dataplane/header"
	ht "github.com/lvslab/lvslab/dataplane/header/headertest"
	"github.com/lvslab/lvslab/dataplane/parse"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// gsoFrame builds a TCP super-packet as veth hands it over: the checksum
// field holds the pseudo-header sum, and vnet describes GSO.
func gsoFrame(t *testing.T, spec ht.Spec, mss int) ([]byte, header.VirtioNetHdr) {
	f := ht.TCP(spec)
	var p parse.Packet
	require.Equal(t, parse.OK, parse.Frame(f, nil, &p))
	seg := header.TCP(f[p.L4Off : p.L3Off+p.Len])
	seg.SetChecksum(header.PseudoHeaderChecksum(header.ProtocolTCP, p.Src, p.Dst, uint32(len(seg))))
	vnet := make(header.VirtioNetHdr, header.VirtioNetHdrSize)
	vnet.SetFlags(header.VirtioNetHdrFNeedsCsum)
	gso := header.VirtioNetHdrGSOTCPv4
	if !p.IsIPv4() {
		gso = header.VirtioNetHdrGSOTCPv6
	}
	vnet.SetGSOType(gso)
	vnet.SetGSOSize(uint16(mss))
	vnet.SetCsumStart(uint16(p.L4Off))
	vnet.SetCsumOffset(header.TCPChecksumOffset)
	return f, vnet
}

func TestSegmentTCP(t *testing.T) {
	payload := make([]byte, 10000)
	for i := range payload {
		payload[i] = byte(i * 13)
	}
	for _, fam := range []struct {
		name string
		spec ht.Spec
	}{
		{"IPv4", ht.Spec{Src: cip, Dst: vip, SrcPort: 40000, DstPort: 80, DF: true, Payload: payload, TCPFlags: header.TCPFlagACK | header.TCPFlagPSH | header.TCPFlagFIN}},
		{"IPv6", ht.Spec{Src: cip6, Dst: vip6, SrcPort: 40000, DstPort: 80, Payload: payload, TCPFlags: header.TCPFlagACK | header.TCPFlagPSH}},
	} {
		t.Run(fam.name, func(t *testing.T) {
			f, vnet := gsoFrame(t, fam.spec, 1448)
			p := mustParse(t, f, vnet)
			outs := make([][]byte, 8)
			for i := range outs {
				outs[i] = make([]byte, 1600)
			}
			lens := make([]int, 8)
			n := SegmentTCP(outs, lens, f, vnet, p)
			require.Equal(t, 7, n, "10000 bytes in 1448-byte segments")
			var got []byte
			for i := range n {
				seg := outs[i][:lens[i]]
				q := mustParse(t, seg, nil)
				pkt := ht.Decode(seg)
				tcp := pkt.Layer(layers.LayerTypeTCP).(*layers.TCP)
				assert.Equal(t, uint32(100+i*1448), tcp.Seq)
				assert.Equal(t, i == n-1, tcp.PSH, "PSH only on the last")
				assert.Equal(t, i == n-1 && fam.name == "IPv4", tcp.FIN, "FIN only on the last")
				assert.True(t, tcp.ACK)
				l4 := seg[q.L4Off : q.L3Off+q.Len]
				assert.Equal(t, uint16(0xffff), header.Checksum(l4, header.PseudoHeaderChecksum(header.ProtocolTCP, q.Src, q.Dst, uint32(len(l4)))), "segment %d checksum", i)
				if fam.name == "IPv4" {
					assert.Equal(t, uint16(0x1234+i), header.IPv4(seg[14:]).ID())
				}
				got = append(got, tcp.Payload...)
			}
			assert.Equal(t, payload, got)
		})
	}
	t.Run("too few buffers write nothing", func(t *testing.T) {
		f, vnet := gsoFrame(t, ht.Spec{Src: cip, Dst: vip, Payload: payload}, 1448)
		p := mustParse(t, f, vnet)
		assert.Zero(t, SegmentTCP(make([][]byte, 2), make([]int, 2), f, vnet, p))
	})
}
