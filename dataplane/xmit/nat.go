package xmit

import (
	"encoding/binary"
	"net/netip"

	"github.com/lvslab/lvslab/dataplane/header"
	"github.com/lvslab/lvslab/dataplane/parse"
)

// NATIn rewrites a client→VIP packet for a masqueraded destination: the
// destination address becomes daddr (the RIP) and the destination port
// dport (§5.1, ip_vs_nat_xmit with tcp/udp/sctp_dnat_handler). The parse p
// is updated to match.
func NATIn(frame []byte, vnet header.VirtioNetHdr, p *parse.Packet, daddr netip.Addr, dport uint16) {
	rewrite(frame, vnet, p, false, daddr, dport)
	p.Dst, p.DstPort = daddr, dport
}

// NATOut rewrites a real server's reply RIP:rport→client so it comes from
// vaddr:vport (§3.11, tcp/udp/sctp_snat_handler).
func NATOut(frame []byte, vnet header.VirtioNetHdr, p *parse.Packet, vaddr netip.Addr, vport uint16) {
	rewrite(frame, vnet, p, true, vaddr, vport)
	p.Src, p.SrcPort = vaddr, vport
}

// Address and port offsets inside the IP and L4 headers.
const (
	ipv4SrcOff = 12
	ipv4DstOff = 16
	ipv6SrcOff = 8
	ipv6DstOff = 24
	l4SrcPort  = 0
	l4DstPort  = 2
)

// rewrite replaces the source (src) or destination address and port of a
// TCP, UDP or SCTP packet and fixes every checksum that covers them.
func rewrite(frame []byte, vnet header.VirtioNetHdr, p *parse.Packet, src bool, addr netip.Addr, port uint16) {
	l3 := frame[p.L3Off:]
	var old netip.Addr
	if p.IsIPv4() {
		ip := header.IPv4(l3)
		if src {
			old = ip.Source()
			ip.SetSource(addr)
		} else {
			old = ip.Destination()
			ip.SetDestination(addr)
		}
	} else {
		ip := header.IPv6(l3)
		if src {
			old = ip.Source()
			ip.SetSource(addr)
		} else {
			old = ip.Destination()
			ip.SetDestination(addr)
		}
	}
	ad := header.AddressDelta(old, addr)
	if p.IsIPv4() {
		ip := header.IPv4(l3)
		ip.SetChecksum(header.UpdateChecksum(ip.Checksum(), ad))
	}
	portOff := l4DstPort
	if src {
		portOff = l4SrcPort
	}
	l4 := frame[p.L4Off : p.L3Off+p.Len]
	oldPort := binary.BigEndian.Uint16(l4[portOff:])
	binary.BigEndian.PutUint16(l4[portOff:], port)
	partial := vnet != nil && vnet.NeedsCsum()
	switch p.Proto {
	case header.ProtocolTCP:
		t := header.TCP(l4)
		if partial {
			t.SetChecksum(header.UpdatePartialChecksum(t.Checksum(), ad))
		} else {
			t.SetChecksum(header.UpdateChecksum(t.Checksum(), ad.Add(header.WordDelta(oldPort, port))))
		}
	case header.ProtocolUDP:
		u := header.UDP(l4)
		switch {
		case partial:
			u.SetChecksum(header.UpdatePartialChecksum(u.Checksum(), ad))
		case u.Checksum() != 0:
			u.SetChecksum(mangled0(header.UpdateChecksum(u.Checksum(), ad.Add(header.WordDelta(oldPort, port)))))
		default:
			// IPv4 "no checksum": the kernel computes a full one.
			l3 := frame[p.L3Off:]
			var s, d netip.Addr
			if p.IsIPv4() {
				s, d = header.IPv4(l3).Source(), header.IPv4(l3).Destination()
			} else {
				s, d = header.IPv6(l3).Source(), header.IPv6(l3).Destination()
			}
			sum := header.PseudoHeaderChecksum(header.ProtocolUDP, s, d, uint32(len(l4)))
			u.SetChecksum(mangled0(^header.Checksum(l4, sum)))
		}
	case header.ProtocolSCTP:
		// CRC32c does not cover addresses; a port change needs a full
		// recompute. A CHECKSUM_PARTIAL SCTP packet is finished here:
		// virtio_net_hdr has no way to ask for a CRC32c.
		if partial {
			vnet.SetFlags(vnet.Flags() &^ header.VirtioNetHdrFNeedsCsum)
			header.SCTP(l4).UpdateChecksum()
		} else if oldPort != port {
			header.SCTP(l4).UpdateChecksum()
		}
	}
}

// mangled0 turns a computed UDP checksum of 0 into 0xffff (CSUM_MANGLED_0):
// 0 on the wire means "no checksum".
func mangled0(c uint16) uint16 {
	if c == 0 {
		return 0xffff
	}
	return c
}

// SetLink sets the frame's Ethernet addresses for the next hop.
func SetLink(frame []byte, src, dst header.MAC) {
	e := header.Ethernet(frame)
	e.SetSource(src)
	e.SetDestination(dst)
}

// DR forwards by direct routing (§5.2): only the Ethernet destination
// changes, to the real server's MAC (and the source to the director's
// outgoing interface); the IP packet is left as it is apart from the TTL
// that Hop.Check decremented.
func DR(frame []byte, src, rs header.MAC) { SetLink(frame, src, rs) }
