package header

import "encoding/binary"

// Transport header layouts. TCP, UDP and SCTP all start with the source and
// destination ports, which is what ICMP errors quote (the first 8 bytes).
const (
	l4SrcPort = 0
	l4DstPort = 2

	tcpSeq      = 4
	tcpAck      = 8
	tcpDataOff  = 12
	tcpFlags    = 13
	tcpWindow   = 14
	tcpChecksum = 16

	udpLength   = 4
	udpChecksum = 6

	sctpVTag     = 4
	sctpChecksum = 8

	TCPMinimumSize  = 20
	UDPSize         = 8
	SCTPCommonSize  = 12
	SCTPChunkHeader = 4
)

// TCP flags.
const (
	TCPFlagFIN uint8 = 0x01
	TCPFlagSYN uint8 = 0x02
	TCPFlagRST uint8 = 0x04
	TCPFlagPSH uint8 = 0x08
	TCPFlagACK uint8 = 0x10
	TCPFlagURG uint8 = 0x20
	TCPFlagECE uint8 = 0x40
	TCPFlagCWR uint8 = 0x80
)

// Checksum field offsets inside the L4 header, as virtio_net_hdr's
// csum_offset carries them.
const (
	TCPChecksumOffset  = tcpChecksum
	UDPChecksumOffset  = udpChecksum
	SCTPChecksumOffset = sctpChecksum
)

// TCP is a view over a TCP header (RFC 9293).
type TCP []byte

// SourcePort returns the source port.
func (b TCP) SourcePort() uint16 { return binary.BigEndian.Uint16(b[l4SrcPort:]) }

// DestinationPort returns the destination port.
func (b TCP) DestinationPort() uint16 { return binary.BigEndian.Uint16(b[l4DstPort:]) }

// SequenceNumber returns the sequence number.
func (b TCP) SequenceNumber() uint32 { return binary.BigEndian.Uint32(b[tcpSeq:]) }

// AckNumber returns the acknowledgement number.
func (b TCP) AckNumber() uint32 { return binary.BigEndian.Uint32(b[tcpAck:]) }

// DataOffset returns the header length in bytes.
func (b TCP) DataOffset() int { return int(b[tcpDataOff]>>4) * 4 }

// Flags returns the flag byte.
func (b TCP) Flags() uint8 { return b[tcpFlags] }

// Window returns the window field.
func (b TCP) Window() uint16 { return binary.BigEndian.Uint16(b[tcpWindow:]) }

// Checksum returns the checksum field.
func (b TCP) Checksum() uint16 { return binary.BigEndian.Uint16(b[tcpChecksum:]) }

// SetSourcePort sets the source port.
func (b TCP) SetSourcePort(p uint16) { binary.BigEndian.PutUint16(b[l4SrcPort:], p) }

// SetDestinationPort sets the destination port.
func (b TCP) SetDestinationPort(p uint16) { binary.BigEndian.PutUint16(b[l4DstPort:], p) }

// SetChecksum sets the checksum field.
func (b TCP) SetChecksum(v uint16) { binary.BigEndian.PutUint16(b[tcpChecksum:], v) }

// UDP is a view over a UDP header (RFC 768).
type UDP []byte

// SourcePort returns the source port.
func (b UDP) SourcePort() uint16 { return binary.BigEndian.Uint16(b[l4SrcPort:]) }

// DestinationPort returns the destination port.
func (b UDP) DestinationPort() uint16 { return binary.BigEndian.Uint16(b[l4DstPort:]) }

// Length returns the length field (header and data).
func (b UDP) Length() uint16 { return binary.BigEndian.Uint16(b[udpLength:]) }

// Checksum returns the checksum field; 0 means none over IPv4.
func (b UDP) Checksum() uint16 { return binary.BigEndian.Uint16(b[udpChecksum:]) }

// SetSourcePort sets the source port.
func (b UDP) SetSourcePort(p uint16) { binary.BigEndian.PutUint16(b[l4SrcPort:], p) }

// SetDestinationPort sets the destination port.
func (b UDP) SetDestinationPort(p uint16) { binary.BigEndian.PutUint16(b[l4DstPort:], p) }

// SetLength sets the length field.
func (b UDP) SetLength(v uint16) { binary.BigEndian.PutUint16(b[udpLength:], v) }

// SetChecksum sets the checksum field.
func (b UDP) SetChecksum(v uint16) { binary.BigEndian.PutUint16(b[udpChecksum:], v) }

// SCTP is a view over an SCTP common header and its chunks (RFC 9260).
type SCTP []byte

// SCTP chunk types the director looks at (first chunk decides the event).
const (
	SCTPChunkData             uint8 = 0
	SCTPChunkInit             uint8 = 1
	SCTPChunkInitAck          uint8 = 2
	SCTPChunkAbort            uint8 = 6
	SCTPChunkShutdown         uint8 = 7
	SCTPChunkShutdownAck      uint8 = 8
	SCTPChunkCookieEcho       uint8 = 10
	SCTPChunkCookieAck        uint8 = 11
	SCTPChunkShutdownComplete uint8 = 14
)

// SourcePort returns the source port.
func (b SCTP) SourcePort() uint16 { return binary.BigEndian.Uint16(b[l4SrcPort:]) }

// DestinationPort returns the destination port.
func (b SCTP) DestinationPort() uint16 { return binary.BigEndian.Uint16(b[l4DstPort:]) }

// VerificationTag returns the verification tag.
func (b SCTP) VerificationTag() uint32 { return binary.BigEndian.Uint32(b[sctpVTag:]) }

// Checksum returns the CRC32c field (stored little-endian on the wire).
func (b SCTP) Checksum() uint32 { return binary.LittleEndian.Uint32(b[sctpChecksum:]) }

// FirstChunkType returns the type of the first chunk; the caller checks
// that len(b) > SCTPCommonSize.
func (b SCTP) FirstChunkType() uint8 { return b[SCTPCommonSize] }

// SetSourcePort sets the source port.
func (b SCTP) SetSourcePort(p uint16) { binary.BigEndian.PutUint16(b[l4SrcPort:], p) }

// SetDestinationPort sets the destination port.
func (b SCTP) SetDestinationPort(p uint16) { binary.BigEndian.PutUint16(b[l4DstPort:], p) }

// CalculateChecksum returns the CRC32c of the packet with the checksum
// field taken as zero; the field is restored.
func (b SCTP) CalculateChecksum() uint32 {
	old := b.Checksum()
	binary.LittleEndian.PutUint32(b[sctpChecksum:], 0)
	c := CRC32c(b)
	binary.LittleEndian.PutUint32(b[sctpChecksum:], old)
	return c
}

// UpdateChecksum recomputes the CRC32c over the whole packet b.
func (b SCTP) UpdateChecksum() {
	binary.LittleEndian.PutUint32(b[sctpChecksum:], 0)
	binary.LittleEndian.PutUint32(b[sctpChecksum:], CRC32c(b))
}
