// Package parse classifies a received Ethernet frame into what the director
// decides on: a flow key (protocol, addresses, ports, TCP flags, first SCTP
// chunk), the offsets of the L3 and L4 headers, and for ICMP errors the flow
// of the quoted packet. Malformed frames are rejected with a Reason that the
// caller counts; no input makes it panic or allocate.
//
// It checks what the kernel checks before IPVS sees a packet (ip_rcv,
// ipv6_rcv: lengths, IHL, the IPv4 header checksum) and what IPVS itself
// checks (L4 headers present, the checksum of a related ICMP error) — and no
// more: IPVS forwards TCP and UDP with bad checksums untouched (an
// incremental rewrite keeps them bad), and so does this director.
package parse

import (
	"net/netip"

	"github.com/lvslab/lvslab/dataplane/header"
)

// Kind says what the director does with a well-formed packet.
type Kind uint8

const (
	// KindOther is not the director's business: the kernel would pass it to
	// the local stack (non-IP frames, protocols without an IPVS handler,
	// ICMP that is not an error).
	KindOther Kind = iota
	// KindTransport is a TCP, UDP or SCTP packet: look it up as a flow.
	KindTransport
	// KindICMPError is an ICMP or ICMPv6 error quoting a TCP, UDP or SCTP
	// packet: Inner holds the quoted flow (§5.5).
	KindICMPError
)

// Flow is a 5-tuple as it appears in a packet.
type Flow struct {
	Proto            uint8
	Src, Dst         netip.Addr
	SrcPort, DstPort uint16
}

// Packet is the parse of one frame. Offsets are from the frame's start.
type Packet struct {
	Kind Kind
	Flow
	TCPFlags  uint8 // TCP only
	SCTPChunk uint8 // SCTP only: type of the first chunk
	L3Off     int   // IP header
	L4Off     int   // TCP/UDP/SCTP/ICMP header
	Len       int   // bytes of the IP packet (link padding excluded)
	TTL       uint8 // TTL or hop limit
	ICMPType  uint8 // KindICMPError only
	ICMPCode  uint8
	// Inner is the quoted packet's flow of an ICMP error, with the offsets
	// of its IP and L4 headers in the frame.
	Inner      Flow
	InnerL3Off int
	InnerL4Off int
	// Tunneled is set when the error quotes an IPIP packet (a TUN
	// transmission of ours, §5.5): Inner is then the client's packet
	// inside it, and QuoteL3Off the quoted outer header.
	Tunneled   bool
	QuoteL3Off int
}

// IsIPv4 reports whether the packet is IPv4.
func (p *Packet) IsIPv4() bool { return p.Src.Is4() }

// Frame parses frame, an Ethernet frame. vnet is the virtio_net_hdr that
// came with it, or nil; a CHECKSUM_PARTIAL or GSO description that does not
// fit the packet is rejected (a rewrite would otherwise corrupt it).
func Frame(frame []byte, vnet header.VirtioNetHdr, p *Packet) Reason {
	*p = Packet{}
	if len(frame) < header.EthernetSize {
		return Truncated
	}
	var r Reason
	switch header.Ethernet(frame).Type() {
	case header.EtherTypeIPv4:
		r = ipv4(frame, header.EthernetSize, p)
	case header.EtherTypeIPv6:
		r = ipv6(frame, header.EthernetSize, p)
	default:
		return NotIP
	}
	if r != OK {
		return r
	}
	if vnet != nil && !vnetFits(vnet, p) {
		return BadVnetHdr
	}
	return OK
}

// vnetFits checks the offload description against the parse: the checksum
// to finish must be the L4 one, and a GSO type must match the protocol.
func vnetFits(v header.VirtioNetHdr, p *Packet) bool {
	if v.NeedsCsum() {
		if p.Kind != KindTransport || int(v.CsumStart()) != p.L4Off {
			return false
		}
		var want uint16
		switch p.Proto {
		case header.ProtocolTCP:
			want = header.TCPChecksumOffset
		case header.ProtocolUDP:
			want = header.UDPChecksumOffset
		case header.ProtocolSCTP:
			want = header.SCTPChecksumOffset
		}
		if v.CsumOffset() != want {
			return false
		}
	}
	if !v.IsGSO() {
		return true
	}
	if !v.NeedsCsum() || v.GSOSize() == 0 {
		return false
	}
	switch v.GSOType() &^ header.VirtioNetHdrGSOECN {
	case header.VirtioNetHdrGSOTCPv4:
		return p.IsIPv4() && p.Proto == header.ProtocolTCP
	case header.VirtioNetHdrGSOTCPv6:
		return !p.IsIPv4() && p.Proto == header.ProtocolTCP
	case header.VirtioNetHdrGSOUDPL4:
		return p.Proto == header.ProtocolUDP
	}
	return false
}

func ipv4(frame []byte, off int, p *Packet) Reason {
	b := frame[off:]
	if len(b) < header.IPv4MinimumSize {
		return Truncated
	}
	ip := header.IPv4(b)
	if ip.Version() != 4 {
		return BadVersion
	}
	hl := ip.HeaderLength()
	if hl < header.IPv4MinimumSize {
		return BadIHL
	}
	if len(b) < hl {
		return Truncated
	}
	tl := int(ip.TotalLength())
	if tl < hl || tl > len(b) {
		return BadTotalLength
	}
	if !ip.IsChecksumValid() {
		return BadIPChecksum
	}
	p.L3Off, p.L4Off, p.Len = off, off+hl, tl
	p.Proto, p.Src, p.Dst, p.TTL = ip.Protocol(), ip.Source(), ip.Destination(), ip.TTL()
	if ip.IsFragment() {
		return Fragment
	}
	return transport(frame[:off+tl], p, true)
}

func ipv6(frame []byte, off int, p *Packet) Reason {
	b := frame[off:]
	if len(b) < header.IPv6FixedHeaderSize {
		return Truncated
	}
	ip := header.IPv6(b)
	if ip.Version() != 6 {
		return BadVersion
	}
	pl := int(ip.PayloadLength())
	if pl == 0 || header.IPv6FixedHeaderSize+pl > len(b) { // jumbograms are not for us
		return BadTotalLength
	}
	n := header.IPv6FixedHeaderSize + pl
	u, err := ip[:n].UpperLayer(n)
	if err != nil {
		return BadExtHeader
	}
	p.L3Off, p.L4Off, p.Len = off, off+u.Offset, n
	p.Proto, p.Src, p.Dst, p.TTL = u.Protocol, ip.Source(), ip.Destination(), ip.HopLimit()
	if u.Fragment {
		return Fragment
	}
	return transport(frame[:off+n], p, false)
}

// transport reads the L4 header at p.L4Off; frame ends where the IP packet
// ends.
func transport(frame []byte, p *Packet, v4 bool) Reason {
	l4 := frame[p.L4Off:]
	switch p.Proto {
	case header.ProtocolTCP:
		if len(l4) < header.TCPMinimumSize {
			return Truncated
		}
		t := header.TCP(l4)
		if t.DataOffset() < header.TCPMinimumSize || t.DataOffset() > len(l4) {
			return BadL4Header
		}
		p.SrcPort, p.DstPort, p.TCPFlags = t.SourcePort(), t.DestinationPort(), t.Flags()
	case header.ProtocolUDP:
		if len(l4) < header.UDPSize {
			return Truncated
		}
		u := header.UDP(l4)
		// A GSO UDP_L4 super-packet carries the length of one segment,
		// so only lengths below the header size are malformed.
		if u.Length() < header.UDPSize {
			return BadL4Header
		}
		p.SrcPort, p.DstPort = u.SourcePort(), u.DestinationPort()
	case header.ProtocolSCTP:
		if len(l4) < header.SCTPCommonSize+header.SCTPChunkHeader {
			return Truncated
		}
		s := header.SCTP(l4)
		p.SrcPort, p.DstPort, p.SCTPChunk = s.SourcePort(), s.DestinationPort(), s.FirstChunkType()
	case header.ProtocolICMPv4:
		if !v4 {
			return UnknownProtocol
		}
		return icmp(frame, p, true)
	case header.ProtocolICMPv6:
		if v4 {
			return UnknownProtocol
		}
		return icmp(frame, p, false)
	default:
		return UnknownProtocol
	}
	p.Kind = KindTransport
	return OK
}

// icmp parses an ICMP message; errors quoting a TCP, UDP or SCTP packet
// become KindICMPError, the rest KindOther (§5.5: only errors are related).
func icmp(frame []byte, p *Packet, v4 bool) Reason {
	m := frame[p.L4Off:]
	if len(m) < header.ICMPHeaderSize {
		return Truncated // ip_vs_in_icmp drops a short ICMP header
	}
	t, c := m[0], m[1]
	if v4 && !header.ICMPv4IsError(t) || !v4 && !header.ICMPv6IsError(t) {
		return OK // KindOther: echo and friends pass
	}
	p.ICMPType, p.ICMPCode = t, c
	if v4 {
		if !header.ICMPv4(m).IsChecksumValid() {
			return BadICMPChecksum
		}
	} else {
		pseudo := header.PseudoHeaderChecksum(header.ProtocolICMPv6, p.Src, p.Dst, uint32(len(m)))
		if header.Checksum(m, pseudo) != 0xffff {
			return BadICMPChecksum
		}
	}
	// The quoted packet: kernel IPVS ignores (accepts) errors whose quote
	// it cannot read; they are counted here and passed like KindOther.
	q := p.L4Off + header.ICMPHeaderSize
	var in Packet
	if !quoted(frame, q, v4, &in) {
		return ICMPQuoteGarbage
	}
	p.Kind = KindICMPError
	p.Inner, p.InnerL3Off, p.InnerL4Off = in.Flow, in.L3Off, in.L4Off
	if in.Tunneled {
		p.Tunneled, p.QuoteL3Off = true, q
	}
	return OK
}

// quoted reads the IP header and the ports of a quoted packet: the IP
// header whole, and at least the first 8 bytes of its L4 header (RFC 792;
// the kernel reads the two ports).
func quoted(frame []byte, off int, v4 bool, in *Packet) bool {
	b := frame[off:]
	in.L3Off = off
	if v4 {
		if len(b) < header.IPv4MinimumSize {
			return false
		}
		ip := header.IPv4(b)
		hl := ip.HeaderLength()
		if ip.Version() != 4 || hl < header.IPv4MinimumSize || len(b) < hl {
			return false
		}
		if ip.FragmentOffset() != 0 {
			return false // no L4 header in a later fragment
		}
		in.Proto, in.Src, in.Dst, in.L4Off = ip.Protocol(), ip.Source(), ip.Destination(), off+hl
		if in.Proto == header.IPv4ProtocolIPIP && !in.Tunneled {
			// An error about our IPIP packet: read the client's packet
			// inside it (ip_vs_in_icmp's tunnel case).
			in.Tunneled = true
			return quoted(frame, off+hl, true, in)
		}
	} else {
		if len(b) < header.IPv6FixedHeaderSize {
			return false
		}
		ip := header.IPv6(b)
		if ip.Version() != 6 {
			return false
		}
		u, err := ip.UpperLayer(len(b))
		if err != nil || u.FragmentOffset != 0 {
			return false
		}
		in.Proto, in.Src, in.Dst, in.L4Off = u.Protocol, ip.Source(), ip.Destination(), off+u.Offset
	}
	switch in.Proto {
	case header.ProtocolTCP, header.ProtocolUDP, header.ProtocolSCTP:
	default:
		return false
	}
	if len(frame)-in.L4Off < 8 {
		return false
	}
	l4 := header.UDP(frame[in.L4Off:]) // the ports sit alike in all three
	in.SrcPort, in.DstPort = l4.SourcePort(), l4.DestinationPort()
	return true
}
