package xmit

import (
	"net/netip"

	"github.com/lvslab/lvslab/dataplane/header"
	"github.com/lvslab/lvslab/dataplane/parse"
)

// TunnelHeadroom is the room Tunnel needs in front of the frame.
const TunnelHeadroom = header.IPv4MinimumSize

// Tunnel is an IPIP tunnel to one real server (§5.3, ip_vs_tunnel_xmit).
type Tunnel struct {
	Src      netip.Addr // the source the route to the RIP chose
	RIP      netip.Addr
	PMTUDisc bool // sysctl pmtu_disc: copy DF from the inner header
}

// Encapsulate wraps the IP packet of the frame at buf[off:off+n] in an
// outer IPv4 header (protocol 4 for IPv4 inside, 41 for IPv6), moving the
// Ethernet header TunnelHeadroom bytes to the front; off must be at least
// TunnelHeadroom. It returns the new frame's offset and length. The outer
// header carries the inner DSCP with the ECN bits encapsulated (RFC 6040
// normal mode, INET_ECN_encapsulate), DF copied from an IPv4 inner header
// when PMTUDisc, the inner TTL (already decremented by Hop.Check) and id.
// A CHECKSUM_PARTIAL description in vnet moves with the L4 header.
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
	noff := off - TunnelHeadroom
	copy(buf[noff:], frame[:p.L3Off]) // the link header moves to the front
	out := buf[noff : off+p.L3Off+p.Len]
	header.Ethernet(out).SetType(header.EtherTypeIPv4)
	header.IPv4(out[p.L3Off:]).Encode(&header.IPv4Fields{
		TOS: ecnEncapsulate(tos), TotalLength: uint16(header.IPv4MinimumSize + p.Len), ID: id,
		Flags: df, TTL: ttl, Protocol: proto, Src: t.Src, Dst: t.RIP,
	})
	if vnet != nil && vnet.NeedsCsum() {
		vnet.SetCsumStart(vnet.CsumStart() + TunnelHeadroom)
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
