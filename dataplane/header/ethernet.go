package header

import "encoding/binary"

// Ethernet is a view over an Ethernet II header.
type Ethernet []byte

// MAC is a 48-bit link address.
type MAC [6]byte

// Ethernet header layout.
const (
	ethDst  = 0
	ethSrc  = 6
	ethType = 12

	EthernetSize = 14
)

// EtherType values the director handles.
const (
	EtherTypeIPv4 uint16 = 0x0800
	EtherTypeARP  uint16 = 0x0806
	EtherTypeVLAN uint16 = 0x8100
	EtherTypeIPv6 uint16 = 0x86dd
)

// Destination returns the destination MAC.
func (b Ethernet) Destination() MAC { return MAC(b[ethDst : ethDst+6]) }

// Source returns the source MAC.
func (b Ethernet) Source() MAC { return MAC(b[ethSrc : ethSrc+6]) }

// Type returns the EtherType.
func (b Ethernet) Type() uint16 { return binary.BigEndian.Uint16(b[ethType:]) }

// SetDestination sets the destination MAC.
func (b Ethernet) SetDestination(m MAC) { copy(b[ethDst:], m[:]) }

// SetSource sets the source MAC.
func (b Ethernet) SetSource(m MAC) { copy(b[ethSrc:], m[:]) }

// SetType sets the EtherType.
func (b Ethernet) SetType(t uint16) { binary.BigEndian.PutUint16(b[ethType:], t) }
