package xmit

import (
	"encoding/binary"

	"github.com/lvslab/lvslab/dataplane/header"
	"github.com/lvslab/lvslab/dataplane/parse"
)

// SegmentTCP splits a GSO TCP super-packet into the segments the kernel's
// tcp_gso_segment would make, for a transmitter that cannot pass the
// super-packet on (TUN: virtio_net_hdr cannot describe GSO inside a
// tunnel). Segment i carries vnet.GSOSize payload bytes (the last what is
// left), sequence number advanced, CWR only in the first, FIN and PSH only
// in the last, IPv4 IDs counting up from the super-packet's, and complete
// IP and TCP checksums. It is written as a whole frame into outs[i] and
// its length into lens[i]. SegmentTCP returns the number of segments, or 0
// if outs or lens are too few or too small or the packet is not GSO TCP.
func SegmentTCP(outs [][]byte, lens []int, frame []byte, vnet header.VirtioNetHdr, p *parse.Packet) int {
	if p.Proto != header.ProtocolTCP || vnet == nil || !vnet.IsGSO() || vnet.GSOSize() == 0 {
		return 0
	}
	tcp := header.TCP(frame[p.L4Off:])
	hdrEnd := p.L4Off + tcp.DataOffset()
	end := p.L3Off + p.Len
	mss := int(vnet.GSOSize())
	payload := end - hdrEnd
	n := max(1, (payload+mss-1)/mss)
	if n > len(outs) || n > len(lens) {
		return 0
	}
	seq := tcp.SequenceNumber()
	flags := tcp.Flags()
	for i := range n {
		lo := hdrEnd + i*mss
		hi := min(lo+mss, end)
		size := hdrEnd + hi - lo
		out := outs[i]
		if len(out) < size {
			return 0
		}
		copy(out, frame[:hdrEnd])
		copy(out[hdrEnd:], frame[lo:hi])
		lens[i] = size
		ipLen := size - p.L3Off
		t := header.TCP(out[p.L4Off:size])
		binary.BigEndian.PutUint32(out[p.L4Off+4:], seq+uint32(i*mss))
		f := flags
		if i > 0 {
			f &^= header.TCPFlagCWR
		}
		if i < n-1 {
			f &^= header.TCPFlagFIN | header.TCPFlagPSH
		}
		out[p.L4Off+13] = f
		var pseudo uint16
		if p.IsIPv4() {
			ip := header.IPv4(out[p.L3Off:])
			ip.SetTotalLength(uint16(ipLen))
			ip.SetID(header.IPv4(frame[p.L3Off:]).ID() + uint16(i))
			ip.SetChecksum(0)
			ip.SetChecksum(ip.CalculateChecksum())
			pseudo = header.PseudoHeaderChecksum(header.ProtocolTCP, ip.Source(), ip.Destination(), uint32(len(t)))
		} else {
			ip := header.IPv6(out[p.L3Off:])
			ip.SetPayloadLength(uint16(ipLen - header.IPv6FixedHeaderSize))
			pseudo = header.PseudoHeaderChecksum(header.ProtocolTCP, ip.Source(), ip.Destination(), uint32(len(t)))
		}
		t.SetChecksum(0)
		t.SetChecksum(^header.Checksum(t, pseudo))
	}
	return n
}
