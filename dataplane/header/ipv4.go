package header

import (
	"encoding/binary"
	"net/netip"
)

// IPv4 is a view over an IPv4 header and what follows it (RFC 791).
type IPv4 []byte

// IPv4 header layout.
const (
	ipv4VersIHL  = 0
	ipv4TOS      = 1
	ipv4TotalLen = 2
	ipv4ID       = 4
	ipv4FlagsOff = 6
	ipv4TTL      = 8
	ipv4Protocol = 9
	ipv4Checksum = 10
	ipv4Src      = 12
	ipv4Dst      = 16

	IPv4MinimumSize = 20
	IPv4MaximumSize = 60
	// IPv4MinimumMTU is the smallest MTU every IPv4 link carries (RFC 791).
	IPv4MinimumMTU = 68
)

// IPv4 flags (the top three bits of the flags/fragment-offset word).
const (
	IPv4FlagDF       uint16 = 0x4000
	IPv4FlagMF       uint16 = 0x2000
	ipv4FragOffMask  uint16 = 0x1fff
	IPv4ProtocolIPIP uint8  = 4
)

// IP protocol numbers.
const (
	ProtocolICMPv4 uint8 = 1
	ProtocolTCP    uint8 = 6
	ProtocolUDP    uint8 = 17
	ProtocolIPv6   uint8 = 41
	ProtocolESP    uint8 = 50
	ProtocolAH     uint8 = 51
	ProtocolICMPv6 uint8 = 58
	ProtocolSCTP   uint8 = 132
)

// Version returns the IP version nibble (valid for IPv6 too).
func (b IPv4) Version() uint8 { return b[ipv4VersIHL] >> 4 }

// HeaderLength returns the header length in bytes (IHL × 4).
func (b IPv4) HeaderLength() int { return int(b[ipv4VersIHL]&0xf) * 4 }

// TOS returns the type-of-service byte (DSCP and ECN).
func (b IPv4) TOS() uint8 { return b[ipv4TOS] }

// TotalLength returns the total length field.
func (b IPv4) TotalLength() uint16 { return binary.BigEndian.Uint16(b[ipv4TotalLen:]) }

// ID returns the identification field.
func (b IPv4) ID() uint16 { return binary.BigEndian.Uint16(b[ipv4ID:]) }

// FlagsFragmentOffset returns the raw flags and fragment offset word.
func (b IPv4) FlagsFragmentOffset() uint16 { return binary.BigEndian.Uint16(b[ipv4FlagsOff:]) }

// DF reports whether the don't-fragment flag is set.
func (b IPv4) DF() bool { return b.FlagsFragmentOffset()&IPv4FlagDF != 0 }

// FragmentOffset returns the fragment offset in bytes.
func (b IPv4) FragmentOffset() int { return int(b.FlagsFragmentOffset()&ipv4FragOffMask) * 8 }

// IsFragment reports whether the packet is a fragment (MF set or a non-zero
// offset), as the kernel's ip_is_fragment.
func (b IPv4) IsFragment() bool {
	return b.FlagsFragmentOffset()&(IPv4FlagMF|ipv4FragOffMask) != 0
}

// TTL returns the time to live.
func (b IPv4) TTL() uint8 { return b[ipv4TTL] }

// Protocol returns the upper-layer protocol number.
func (b IPv4) Protocol() uint8 { return b[ipv4Protocol] }

// Checksum returns the header checksum field.
func (b IPv4) Checksum() uint16 { return binary.BigEndian.Uint16(b[ipv4Checksum:]) }

// Source returns the source address.
func (b IPv4) Source() netip.Addr { return netip.AddrFrom4([4]byte(b[ipv4Src : ipv4Src+4])) }

// Destination returns the destination address.
func (b IPv4) Destination() netip.Addr { return netip.AddrFrom4([4]byte(b[ipv4Dst : ipv4Dst+4])) }

// Options returns the header options.
func (b IPv4) Options() []byte { return b[IPv4MinimumSize:b.HeaderLength()] }

// Payload returns the bytes after the header up to the total length.
func (b IPv4) Payload() []byte { return b[b.HeaderLength():b.TotalLength()] }

// SetTOS sets the type-of-service byte.
func (b IPv4) SetTOS(v uint8) { b[ipv4TOS] = v }

// SetTotalLength sets the total length field.
func (b IPv4) SetTotalLength(v uint16) { binary.BigEndian.PutUint16(b[ipv4TotalLen:], v) }

// SetID sets the identification field.
func (b IPv4) SetID(v uint16) { binary.BigEndian.PutUint16(b[ipv4ID:], v) }

// SetFlagsFragmentOffset sets the raw flags and fragment offset word.
func (b IPv4) SetFlagsFragmentOffset(v uint16) { binary.BigEndian.PutUint16(b[ipv4FlagsOff:], v) }

// SetTTL sets the time to live.
func (b IPv4) SetTTL(v uint8) { b[ipv4TTL] = v }

// SetProtocol sets the upper-layer protocol.
func (b IPv4) SetProtocol(v uint8) { b[ipv4Protocol] = v }

// SetChecksum sets the header checksum field.
func (b IPv4) SetChecksum(v uint16) { binary.BigEndian.PutUint16(b[ipv4Checksum:], v) }

// SetSource sets the source address.
func (b IPv4) SetSource(a netip.Addr) { a4 := a.As4(); copy(b[ipv4Src:], a4[:]) }

// SetDestination sets the destination address.
func (b IPv4) SetDestination(a netip.Addr) { a4 := a.As4(); copy(b[ipv4Dst:], a4[:]) }

// CalculateChecksum returns the header checksum of the header as it stands
// with the checksum field taken as zero (ip_fast_csum).
func (b IPv4) CalculateChecksum() uint16 {
	hl := b.HeaderLength()
	sum := Checksum(b[:ipv4Checksum], 0)
	return ^Checksum(b[ipv4Src:hl], sum)
}

// IsChecksumValid reports whether the header checksum verifies.
func (b IPv4) IsChecksumValid() bool {
	return Checksum(b[:b.HeaderLength()], 0) == 0xffff
}

// DecrementTTL lowers the TTL by one and updates the header checksum
// incrementally, as the kernel's ip_decrease_ttl.
func (b IPv4) DecrementTTL() {
	old := binary.BigEndian.Uint16(b[ipv4TTL:])
	b[ipv4TTL]--
	b.SetChecksum(UpdateChecksum(b.Checksum(), WordDelta(old, binary.BigEndian.Uint16(b[ipv4TTL:]))))
}

// IPv4Fields are the fields Encode writes into a new 20-byte header.
type IPv4Fields struct {
	TOS         uint8
	TotalLength uint16
	ID          uint16
	Flags       uint16 // IPv4FlagDF or 0; the fragment offset is zero
	TTL         uint8
	Protocol    uint8
	Src, Dst    netip.Addr
}

// Encode writes an option-less header from f, checksum included.
func (b IPv4) Encode(f *IPv4Fields) {
	b[ipv4VersIHL] = 0x45
	b[ipv4TOS] = f.TOS
	b.SetTotalLength(f.TotalLength)
	b.SetID(f.ID)
	b.SetFlagsFragmentOffset(f.Flags)
	b[ipv4TTL] = f.TTL
	b[ipv4Protocol] = f.Protocol
	b.SetSource(f.Src)
	b.SetDestination(f.Dst)
	b.SetChecksum(0)
	b.SetChecksum(b.CalculateChecksum())
}
