package header

import "encoding/binary"

// ICMP header layout, shared by ICMPv4 (RFC 792) and ICMPv6 (RFC 4443):
// type, code, checksum, then four bytes whose meaning depends on the type
// (echo id/sequence, the next-hop MTU of fragmentation-needed, the MTU of
// packet-too-big), then the body — for errors, the quoted packet.
const (
	icmpType     = 0
	icmpCode     = 1
	icmpChecksum = 2
	icmpRest     = 4

	ICMPHeaderSize = 8
	// ICMPv4ErrorMaxSize bounds an ICMPv4 error, IP header included: the
	// kernel's icmp_send quotes the offending packet up to 576 bytes.
	ICMPv4ErrorMaxSize = 576
	// ICMPv6ErrorMaxSize: ICMPv6 errors fill up to the minimum MTU.
	ICMPv6ErrorMaxSize = IPv6MinimumMTU
)

// ICMPv4 and ICMPv6 types and codes the director sends or relays.
const (
	ICMPv4EchoReply      uint8 = 0
	ICMPv4DestUnreach    uint8 = 3
	ICMPv4SourceQuench   uint8 = 4
	ICMPv4Echo           uint8 = 8
	ICMPv4TimeExceeded   uint8 = 11
	ICMPv4ParamProblem   uint8 = 12
	ICMPv4PortUnreach    uint8 = 3 // code of DestUnreach
	ICMPv4FragNeeded     uint8 = 4 // code of DestUnreach
	ICMPv4TTLExceeded    uint8 = 0 // code of TimeExceeded
	ICMPv6DestUnreach    uint8 = 1
	ICMPv6PacketTooBig   uint8 = 2
	ICMPv6TimeExceeded   uint8 = 3
	ICMPv6ParamProblem   uint8 = 4
	ICMPv6PortUnreach    uint8 = 4 // code of DestUnreach
	ICMPv6HopLimitExceed uint8 = 0 // code of TimeExceeded
)

// ICMPv4 is a view over an ICMPv4 message.
type ICMPv4 []byte

// ICMPv4IsError reports whether t is an error type IPVS treats as related
// to a connection: destination unreachable, source quench, time exceeded
// (ip_vs_in_icmp).
func ICMPv4IsError(t uint8) bool {
	return t == ICMPv4DestUnreach || t == ICMPv4SourceQuench || t == ICMPv4TimeExceeded
}

// ICMPv6IsError reports whether t is an error type (type < 128).
func ICMPv6IsError(t uint8) bool { return t < 128 }

// Type returns the message type.
func (b ICMPv4) Type() uint8 { return b[icmpType] }

// Code returns the message code.
func (b ICMPv4) Code() uint8 { return b[icmpCode] }

// Checksum returns the checksum field.
func (b ICMPv4) Checksum() uint16 { return binary.BigEndian.Uint16(b[icmpChecksum:]) }

// MTU returns the next-hop MTU of a fragmentation-needed message (RFC 1191).
func (b ICMPv4) MTU() uint16 { return binary.BigEndian.Uint16(b[icmpRest+2:]) }

// Quote returns the quoted packet of an error message.
func (b ICMPv4) Quote() []byte { return b[ICMPHeaderSize:] }

// SetTypeCode sets type and code.
func (b ICMPv4) SetTypeCode(t, c uint8) { b[icmpType], b[icmpCode] = t, c }

// SetChecksum sets the checksum field.
func (b ICMPv4) SetChecksum(v uint16) { binary.BigEndian.PutUint16(b[icmpChecksum:], v) }

// SetRest sets the four type-specific bytes (for fragmentation-needed:
// unused 16 bits then the MTU).
func (b ICMPv4) SetRest(v uint32) { binary.BigEndian.PutUint32(b[icmpRest:], v) }

// CalculateChecksum returns the checksum over the whole message b with the
// checksum field taken as zero.
func (b ICMPv4) CalculateChecksum() uint16 {
	sum := Checksum(b[:icmpChecksum], 0)
	return ^Checksum(b[icmpRest:], sum)
}

// IsChecksumValid reports whether the checksum over b verifies.
func (b ICMPv4) IsChecksumValid() bool { return Checksum(b, 0) == 0xffff }

// ICMPv6 is a view over an ICMPv6 message.
type ICMPv6 []byte

// Type returns the message type.
func (b ICMPv6) Type() uint8 { return b[icmpType] }

// Code returns the message code.
func (b ICMPv6) Code() uint8 { return b[icmpCode] }

// Checksum returns the checksum field.
func (b ICMPv6) Checksum() uint16 { return binary.BigEndian.Uint16(b[icmpChecksum:]) }

// MTU returns the MTU of a packet-too-big message.
func (b ICMPv6) MTU() uint32 { return binary.BigEndian.Uint32(b[icmpRest:]) }

// Quote returns the quoted packet of an error message.
func (b ICMPv6) Quote() []byte { return b[ICMPHeaderSize:] }

// SetTypeCode sets type and code.
func (b ICMPv6) SetTypeCode(t, c uint8) { b[icmpType], b[icmpCode] = t, c }

// SetChecksum sets the checksum field.
func (b ICMPv6) SetChecksum(v uint16) { binary.BigEndian.PutUint16(b[icmpChecksum:], v) }

// SetRest sets the four type-specific bytes (the MTU of packet-too-big).
func (b ICMPv6) SetRest(v uint32) { binary.BigEndian.PutUint32(b[icmpRest:], v) }

// CalculateChecksum returns the checksum of b with the checksum field taken
// as zero, given the pseudo-header sum (PseudoHeaderChecksum with
// ProtocolICMPv6 and len(b)).
func (b ICMPv6) CalculateChecksum(pseudo uint16) uint16 {
	sum := Checksum(b[:icmpChecksum], pseudo)
	return ^Checksum(b[icmpRest:], sum)
}
