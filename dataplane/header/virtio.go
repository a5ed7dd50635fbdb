package header

import "encoding/binary"

// VirtioNetHdr is a view over the 10-byte struct virtio_net_hdr that an
// AF_PACKET socket with PACKET_VNET_HDR reads before each frame and expects
// before each frame it sends. It carries what a plain frame loses:
// a CHECKSUM_PARTIAL packet's checksum start and offset (the checksum field
// then holds only the pseudo-header sum) and a GSO packet's segment size,
// so a 64 KB TCP super-packet crosses the director whole. Fields are in the
// host's byte order (the kernel's vio_le() on little-endian hosts).
type VirtioNetHdr []byte

// virtio_net_hdr layout (include/uapi/linux/virtio_net.h).
const (
	vnetFlags      = 0
	vnetGSOType    = 1
	vnetHdrLen     = 2
	vnetGSOSize    = 4
	vnetCsumStart  = 6
	vnetCsumOffset = 8

	VirtioNetHdrSize = 10
)

// Flags and GSO types.
const (
	VirtioNetHdrFNeedsCsum uint8 = 1
	VirtioNetHdrFDataValid uint8 = 2

	VirtioNetHdrGSONone  uint8 = 0
	VirtioNetHdrGSOTCPv4 uint8 = 1
	VirtioNetHdrGSOUDP   uint8 = 3
	VirtioNetHdrGSOTCPv6 uint8 = 4
	VirtioNetHdrGSOUDPL4 uint8 = 5
	VirtioNetHdrGSOECN   uint8 = 0x80
)

// Flags returns the flags byte.
func (b VirtioNetHdr) Flags() uint8 { return b[vnetFlags] }

// NeedsCsum reports whether the packet is CHECKSUM_PARTIAL.
func (b VirtioNetHdr) NeedsCsum() bool { return b[vnetFlags]&VirtioNetHdrFNeedsCsum != 0 }

// GSOType returns the GSO type with the ECN bit.
func (b VirtioNetHdr) GSOType() uint8 { return b[vnetGSOType] }

// IsGSO reports whether the packet is a GSO super-packet.
func (b VirtioNetHdr) IsGSO() bool { return b[vnetGSOType]&^VirtioNetHdrGSOECN != VirtioNetHdrGSONone }

// HdrLen returns the length of the headers to replicate in each segment.
func (b VirtioNetHdr) HdrLen() uint16 { return binary.NativeEndian.Uint16(b[vnetHdrLen:]) }

// GSOSize returns the segment payload size.
func (b VirtioNetHdr) GSOSize() uint16 { return binary.NativeEndian.Uint16(b[vnetGSOSize:]) }

// CsumStart returns where checksumming starts, from the frame's start.
func (b VirtioNetHdr) CsumStart() uint16 { return binary.NativeEndian.Uint16(b[vnetCsumStart:]) }

// CsumOffset returns the checksum field's offset from CsumStart.
func (b VirtioNetHdr) CsumOffset() uint16 { return binary.NativeEndian.Uint16(b[vnetCsumOffset:]) }

// SetFlags sets the flags byte.
func (b VirtioNetHdr) SetFlags(v uint8) { b[vnetFlags] = v }

// SetGSOType sets the GSO type.
func (b VirtioNetHdr) SetGSOType(v uint8) { b[vnetGSOType] = v }

// SetHdrLen sets the header length.
func (b VirtioNetHdr) SetHdrLen(v uint16) { binary.NativeEndian.PutUint16(b[vnetHdrLen:], v) }

// SetGSOSize sets the segment size.
func (b VirtioNetHdr) SetGSOSize(v uint16) { binary.NativeEndian.PutUint16(b[vnetGSOSize:], v) }

// SetCsumStart sets the checksum start.
func (b VirtioNetHdr) SetCsumStart(v uint16) { binary.NativeEndian.PutUint16(b[vnetCsumStart:], v) }

// SetCsumOffset sets the checksum offset.
func (b VirtioNetHdr) SetCsumOffset(v uint16) { binary.NativeEndian.PutUint16(b[vnetCsumOffset:], v) }

// Clear zeroes the header: a plain packet with a complete checksum.
func (b VirtioNetHdr) Clear() { clear(b[:VirtioNetHdrSize]) }
