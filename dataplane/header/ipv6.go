package header

import (
	"encoding/binary"
	"errors"
	"net/netip"
)

// IPv6 is a view over an IPv6 fixed header and what follows it (RFC 8200).
type IPv6 []byte

// IPv6 header layout.
const (
	ipv6VersTCFL   = 0
	ipv6PayloadLen = 4
	ipv6NextHeader = 6
	ipv6HopLimit   = 7
	ipv6Src        = 8
	ipv6Dst        = 24

	IPv6FixedHeaderSize = 40
	// IPv6MinimumMTU is the smallest MTU every IPv6 link carries.
	IPv6MinimumMTU = 1280
)

// IPv6 extension header numbers (RFC 8200 §4).
const (
	IPv6HopByHop     uint8 = 0
	IPv6Routing      uint8 = 43
	IPv6Fragment     uint8 = 44
	IPv6NoNextHeader uint8 = 59
	IPv6DestOptions  uint8 = 60
)

// TrafficClass returns the traffic class (DSCP and ECN).
func (b IPv6) TrafficClass() uint8 {
	return uint8(binary.BigEndian.Uint16(b[ipv6VersTCFL:]) >> 4)
}

// PayloadLength returns the payload length field.
func (b IPv6) PayloadLength() uint16 { return binary.BigEndian.Uint16(b[ipv6PayloadLen:]) }

// NextHeader returns the next header field of the fixed header.
func (b IPv6) NextHeader() uint8 { return b[ipv6NextHeader] }

// HopLimit returns the hop limit.
func (b IPv6) HopLimit() uint8 { return b[ipv6HopLimit] }

// Source returns the source address.
func (b IPv6) Source() netip.Addr { return netip.AddrFrom16([16]byte(b[ipv6Src : ipv6Src+16])) }

// Destination returns the destination address.
func (b IPv6) Destination() netip.Addr { return netip.AddrFrom16([16]byte(b[ipv6Dst : ipv6Dst+16])) }

// SetPayloadLength sets the payload length field.
func (b IPv6) SetPayloadLength(v uint16) { binary.BigEndian.PutUint16(b[ipv6PayloadLen:], v) }

// SetNextHeader sets the next header field.
func (b IPv6) SetNextHeader(v uint8) { b[ipv6NextHeader] = v }

// SetHopLimit sets the hop limit.
func (b IPv6) SetHopLimit(v uint8) { b[ipv6HopLimit] = v }

// SetSource sets the source address.
func (b IPv6) SetSource(a netip.Addr) { a16 := a.As16(); copy(b[ipv6Src:], a16[:]) }

// SetDestination sets the destination address.
func (b IPv6) SetDestination(a netip.Addr) { a16 := a.As16(); copy(b[ipv6Dst:], a16[:]) }

// IPv6Fields are the fields Encode writes into a new fixed header.
type IPv6Fields struct {
	TrafficClass  uint8
	PayloadLength uint16
	NextHeader    uint8
	HopLimit      uint8
	Src, Dst      netip.Addr
}

// Encode writes a fixed header from f with flow label 0.
func (b IPv6) Encode(f *IPv6Fields) {
	binary.BigEndian.PutUint32(b[ipv6VersTCFL:], 6<<28|uint32(f.TrafficClass)<<20)
	b.SetPayloadLength(f.PayloadLength)
	b[ipv6NextHeader] = f.NextHeader
	b[ipv6HopLimit] = f.HopLimit
	b.SetSource(f.Src)
	b.SetDestination(f.Dst)
}

// Errors of the extension header walk.
var (
	ErrIPv6ExtTruncated = errors.New("ipv6: extension header truncated")
)

// IPv6UpperLayer is where the extension header chain ends.
type IPv6UpperLayer struct {
	Protocol uint8 // upper-layer protocol, or IPv6NoNextHeader
	Offset   int   // offset of the upper-layer header from the fixed header
	// Fragment is set when a fragment header was seen; FragmentOffset is
	// its offset in bytes and MoreFragments its M flag.
	Fragment       bool
	FragmentOffset int
	MoreFragments  bool
}

// UpperLayer walks the extension header chain of b (limited to its first n
// bytes) and returns the upper-layer protocol and its offset, as the
// kernel's ipv6_find_hdr with target -1: hop-by-hop, routing, destination
// options, fragment and AH headers are skipped; the walk stops at the first
// other protocol. In a non-first fragment the walk stops at the fragment
// header's next header, whose bytes are not in this packet.
func (b IPv6) UpperLayer(n int) (IPv6UpperLayer, error) {
	var u IPv6UpperLayer
	next := b.NextHeader()
	off := IPv6FixedHeaderSize
	for {
		switch next {
		case IPv6HopByHop, IPv6Routing, IPv6DestOptions:
			if off+8 > n {
				return u, ErrIPv6ExtTruncated
			}
			next, off = b[off], off+(int(b[off+1])+1)*8
		case ProtocolAH:
			if off+8 > n {
				return u, ErrIPv6ExtTruncated
			}
			next, off = b[off], off+(int(b[off+1])+2)*4
		case IPv6Fragment:
			if off+8 > n {
				return u, ErrIPv6ExtTruncated
			}
			fo := binary.BigEndian.Uint16(b[off+2:])
			u.Fragment = true
			u.FragmentOffset = int(fo &^ 7)
			u.MoreFragments = fo&1 != 0
			next, off = b[off], off+8
			if u.FragmentOffset != 0 {
				u.Protocol, u.Offset = next, off
				return u, nil
			}
		default:
			if off > n {
				return u, ErrIPv6ExtTruncated
			}
			u.Protocol, u.Offset = next, off
			return u, nil
		}
	}
}

// Version returns the IP version nibble.
func (b IPv6) Version() uint8 { return b[ipv6VersTCFL] >> 4 }
