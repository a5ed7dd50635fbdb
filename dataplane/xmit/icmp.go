package xmit

import (
	"encoding/binary"
	"net/netip"

	"github.com/lvslab/lvslab/dataplane/header"
	"github.com/lvslab/lvslab/dataplane/parse"
)

// ICMP error fields the kernel's icmp_send and icmp6_send use.
const (
	icmpTTL        = 64   // sysctl_ip_default_ttl / hop limit
	icmpTOSControl = 0xc0 // IPTOS_PREC_INTERNETCONTROL
	ipTOSMask      = 0x1e // IPTOS_TOS_MASK
)

// ICMPErrorSize returns the frame size ICMPError writes for p.
func ICMPErrorSize(p *parse.Packet) int {
	if p.IsIPv4() {
		return header.EthernetSize + min(header.ICMPv4ErrorMaxSize, header.IPv4MinimumSize+header.ICMPHeaderSize+p.Len)
	}
	return header.EthernetSize + min(header.ICMPv6ErrorMaxSize, header.IPv6FixedHeaderSize+header.ICMPHeaderSize+p.Len)
}

// ICMPError writes into out an ICMP (ICMPv6 for IPv6) error of type t and
// code c about the packet p in frame, addressed back to its source from src
// and quoting as much of it as the kernel does (576 bytes of IPv4 error,
// 1280 of IPv6). rest is the type-specific word (the MTU of
// fragmentation-needed and packet-too-big). The Ethernet addresses are
// swapped, so the error goes back to the hop the frame came from. It
// returns the frame length, or 0 if out is shorter than ICMPErrorSize(p)
// or p is itself an ICMP error (never an error about an error, RFC 1122
// §3.2.2, as icmp_send).
//
// The kernel sends errors about packets to the VIP from the VIP (icmp_send
// picks the packet's local destination address), so src is normally p.Dst.
func ICMPError(out, frame []byte, p *parse.Packet, src netip.Addr, t, c uint8, rest uint32) int {
	n := ICMPErrorSize(p)
	if len(out) < n || p.Kind == parse.KindICMPError {
		return 0
	}
	in := header.Ethernet(frame)
	e := header.Ethernet(out)
	e.SetDestination(in.Source())
	e.SetSource(in.Destination())
	l3 := out[header.EthernetSize:n]
	if p.IsIPv4() {
		e.SetType(header.EtherTypeIPv4)
		tos := header.IPv4(frame[p.L3Off:]).TOS()&ipTOSMask | icmpTOSControl
		m := header.ICMPv4(l3[header.IPv4MinimumSize:])
		copy(m.Quote(), frame[p.L3Off:p.L3Off+p.Len])
		m.SetTypeCode(t, c)
		m.SetRest(rest)
		m.SetChecksum(0)
		m.SetChecksum(m.CalculateChecksum())
		header.IPv4(l3).Encode(&header.IPv4Fields{TOS: tos, TotalLength: uint16(len(l3)), TTL: icmpTTL,
			Protocol: header.ProtocolICMPv4, Src: src, Dst: p.Src})
		return n
	}
	e.SetType(header.EtherTypeIPv6)
	m := header.ICMPv6(l3[header.IPv6FixedHeaderSize:])
	copy(m.Quote(), frame[p.L3Off:p.L3Off+p.Len])
	m.SetTypeCode(t, c)
	m.SetRest(rest)
	m.SetChecksum(0)
	m.SetChecksum(m.CalculateChecksum(header.PseudoHeaderChecksum(header.ProtocolICMPv6, src, p.Src, uint32(len(m)))))
	header.IPv6(l3).Encode(&header.IPv6Fields{PayloadLength: uint16(len(m)), NextHeader: header.ProtocolICMPv6, HopLimit: icmpTTL, Src: src, Dst: p.Src})
	return n
}

// PortUnreachable writes the error the director sends when a service has
// no destination for a new connection (§3.12 step 4: port unreachable, for
// TCP as well, no RST), from the VIP.
func PortUnreachable(out, frame []byte, p *parse.Packet) int {
	if p.IsIPv4() {
		return ICMPError(out, frame, p, p.Dst, header.ICMPv4DestUnreach, header.ICMPv4PortUnreach, 0)
	}
	return ICMPError(out, frame, p, p.Dst, header.ICMPv6DestUnreach, header.ICMPv6PortUnreach, 0)
}

// NATICMPIn relays an inbound ICMP error to a masqueraded real server
// (§5.5, ip_vs_nat_icmp with inout=0). The error quotes a reply the
// director sent as VIP:vport → client; the outer destination and the
// quoted source become daddr (the RIP), the quoted source port dport. Both
// IP header checksums and the ICMP checksum are recomputed; the quoted L4
// checksum is left alone, as the kernel leaves it.
func NATICMPIn(frame []byte, p *parse.Packet, daddr netip.Addr, dport uint16) {
	natICMP(frame, p, false, daddr, dport)
	p.Dst = daddr
	p.Inner.Src, p.Inner.SrcPort = daddr, dport
}

// NATICMPOut relays an outbound ICMP error from a masqueraded real server
// (or the path to it) to the client (§5.5, ip_vs_nat_icmp with inout=1):
// the outer source and the quoted destination become vaddr, the quoted
// destination port vport.
func NATICMPOut(frame []byte, p *parse.Packet, vaddr netip.Addr, vport uint16) {
	natICMP(frame, p, true, vaddr, vport)
	p.Src = vaddr
	p.Inner.Dst, p.Inner.DstPort = vaddr, vport
}

func natICMP(frame []byte, p *parse.Packet, out bool, addr netip.Addr, port uint16) {
	outer, inner := frame[p.L3Off:], frame[p.InnerL3Off:]
	end := p.L3Off + p.Len
	portOff := l4SrcPort
	if out {
		portOff = l4DstPort
	}
	binary.BigEndian.PutUint16(frame[p.InnerL4Off+portOff:], port)
	if p.IsIPv4() {
		o, i := header.IPv4(outer), header.IPv4(inner)
		if out {
			o.SetSource(addr)
			i.SetDestination(addr)
		} else {
			o.SetDestination(addr)
			i.SetSource(addr)
		}
		o.SetChecksum(0)
		o.SetChecksum(o.CalculateChecksum())
		i.SetChecksum(0)
		i.SetChecksum(i.CalculateChecksum())
		m := header.ICMPv4(frame[p.L4Off:end])
		m.SetChecksum(0)
		m.SetChecksum(m.CalculateChecksum())
		return
	}
	o, i := header.IPv6(outer), header.IPv6(inner)
	if out {
		o.SetSource(addr)
		i.SetDestination(addr)
	} else {
		o.SetDestination(addr)
		i.SetSource(addr)
	}
	m := header.ICMPv6(frame[p.L4Off:end])
	m.SetChecksum(0)
	m.SetChecksum(m.CalculateChecksum(header.PseudoHeaderChecksum(header.ProtocolICMPv6, o.Source(), o.Destination(), uint32(len(m)))))
}

// TunnelICMP answers an ICMP error about one of our IPIP packets
// (p.Tunneled, §5.5): the client's packet inside it is extracted and the
// error is sent to the client, from the VIP, with the same type and code.
// For fragmentation-needed the MTU becomes the reported one (or routeMTU,
// the route to the real server, when smaller) less the 20-byte outer
// header when above 88, and only a client packet with DF gets an answer:
// otherwise TunnelICMP returns 0 and the error is consumed. The link
// addresses of out are swapped from frame's (which came from the real
// server's side): the caller sets them for the client's side.
func TunnelICMP(out, frame []byte, p *parse.Packet, routeMTU int) int {
	if !p.Tunneled || !p.IsIPv4() {
		return 0
	}
	m := header.ICMPv4(frame[p.L4Off:])
	rest := binary.BigEndian.Uint32(frame[p.L4Off+4:])
	client := header.IPv4(frame[p.InnerL3Off:])
	if m.Type() == header.ICMPv4DestUnreach && m.Code() == header.ICMPv4FragNeeded {
		mtu := int(m.MTU())
		if routeMTU > 0 && routeMTU < mtu {
			mtu = routeMTU
		}
		if mtu > header.IPv4MinimumMTU+header.IPv4MinimumSize {
			mtu -= header.IPv4MinimumSize
		}
		if !client.DF() {
			return 0
		}
		rest = uint32(mtu)
	}
	q := parse.Packet{Kind: parse.KindTransport, Flow: p.Inner, L3Off: p.InnerL3Off, L4Off: p.InnerL4Off,
		Len: min(int(client.TotalLength()), p.L3Off+p.Len-p.InnerL3Off)}
	return ICMPError(out, frame, &q, p.Inner.Dst, m.Type(), m.Code(), rest)
}
