package xmit

import (
	"net/netip"

	"github.com/lvslab/lvslab/dataplane/header"
	"github.com/lvslab/lvslab/dataplane/parse"
)

// TunnelHeadroom is the most room Encapsulate needs in front of the frame
// (an IPv6 outer header; an IPv4 one takes 20 bytes).
const TunnelHeadroom = header.IPv6FixedHeaderSize

// Tunnel is an IP-in-IP tunnel to one real server (§5.3,
// ip_vs_tunnel_xmit and _v6). The outer family is RIP's.
type Tunnel struct {
	Src      netip.Addr // the source the route to the RIP chose
	RIP      netip.Addr
	PMTUDisc bool // sysctl pmtu_disc: copy DF from an IPv4 inner header
}

// Overhead returns the outer header's size.
func (t Tunnel) Overhead() int {
	if t.RIP.Is6() {
		return header.IPv6FixedHeaderSize
	}
	return header.IPv4MinimumSize
}

// Encapsulate wraps the IP packet of the frame at buf[off:off+n] in an
// outer header to the RIP — IPv4 (protocol 4 for IPv4 inside, 41 for IPv6)
// or IPv6 (next header 4 or 41) — moving the Ethernet header Overhead()
// bytes to the front; off must be at least Overhead(). It returns the new
// frame's offset and length. The outer header carries the inner DSCP with
// the ECN bits encapsulated (RFC 6040 normal mode, INET_ECN_encapsulate)
// and the inner TTL as TTL or hop limit (already decremented by
// Hop.Check); an IPv4 outer header also DF, copied from an IPv4 inner
// header when PMTUDisc, and id; an IPv6 one flow label 0. A
// CHECKSUM_PARTIAL description in vnet moves with the L4 header.
//
// GSO packets must be segmented first (SegmentTCP): virtio_net_hdr cannot
// describe a GSO packet inside a tunnel.
func (t Tunnel) Encapsulate(buf []byte, off, n int, vnet header.VirtioNetHdr, p *parse.Packet, id uint16) (int, int) {
	frame := buf[off : off+n]
	var tos, ttl uint8
	var df uint16
	proto := header.IPv4ProtocolIPIP
	if p.IsIPv4() {
		in := header.IPv4(frame[p.L3Off:])
		tos, ttl = in.TOS(), in.TTL()
		if t.PMTUDisc {
			df = in.FlagsFragmentOffset() & header.IPv4FlagDF
		}
	} else {
		in := header.IPv6(frame[p.L3Off:])
		tos, ttl, proto = in.TrafficClass(), in.HopLimit(), header.ProtocolIPv6
	}
	h := t.Overhead()
	noff := off - h
	copy(buf[noff:], frame[:p.L3Off]) // the link header moves to the front
	out := buf[noff : off+p.L3Off+p.Len]
	if t.RIP.Is6() {
		header.Ethernet(out).SetType(header.EtherTypeIPv6)
		header.IPv6(out[p.L3Off:]).Encode(&header.IPv6Fields{
			TrafficClass: ecnEncapsulate(tos), PayloadLength: uint16(p.Len), NextHeader: proto,
			HopLimit: ttl, Src: t.Src, Dst: t.RIP,
		})
	} else {
		header.Ethernet(out).SetType(header.EtherTypeIPv4)
		header.IPv4(out[p.L3Off:]).Encode(&header.IPv4Fields{
			TOS: ecnEncapsulate(tos), TotalLength: uint16(h + p.Len), ID: id,
			Flags: df, TTL: ttl, Protocol: proto, Src: t.Src, Dst: t.RIP,
		})
	}
	if vnet != nil && vnet.NeedsCsum() {
		vnet.SetCsumStart(vnet.CsumStart() + uint16(h))
	}
	return noff, len(out)
}

// ECN codepoints (RFC 3168).
const (
	ecnMask = 0x03
	ecnECT0 = 0x02
	ecnCE   = 0x03
)

// ecnEncapsulate returns the outer TOS for an inner TOS: the DSCP is
// copied; the ECN field too, except that CE becomes ECT(0).
func ecnEncapsulate(inner uint8) uint8 {
	if inner&ecnMask == ecnCE {
		return inner&^ecnMask | ecnECT0
	}
	return inner
}
