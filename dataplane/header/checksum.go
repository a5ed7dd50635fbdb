package header

import (
	"encoding/binary"
	"hash/crc32"
	"net/netip"
)

// Checksum returns the 16-bit one's complement sum of b added to initial
// (RFC 1071), not complemented. An odd trailing byte is padded with zero.
func Checksum(b []byte, initial uint16) uint16 {
	sum := uint64(initial)
	for len(b) >= 8 {
		v := binary.BigEndian.Uint64(b)
		sum += v >> 48
		sum += (v >> 32) & 0xffff
		sum += (v >> 16) & 0xffff
		sum += v & 0xffff
		b = b[8:]
	}
	for len(b) >= 2 {
		sum += uint64(binary.BigEndian.Uint16(b))
		b = b[2:]
	}
	if len(b) == 1 {
		sum += uint64(b[0]) << 8
	}
	return fold(sum)
}

// ChecksumCombine adds two one's complement sums.
func ChecksumCombine(a, b uint16) uint16 {
	return fold(uint64(a) + uint64(b))
}

func fold(sum uint64) uint16 {
	for sum > 0xffff {
		sum = (sum >> 16) + (sum & 0xffff)
	}
	return uint16(sum)
}

// PseudoHeaderChecksum returns the sum of the TCP/UDP pseudo-header
// (RFC 793, RFC 8200 §8.1) for a segment of length bytes, not complemented.
func PseudoHeaderChecksum(proto uint8, src, dst netip.Addr, length uint32) uint16 {
	var sum uint16
	if src.Is4() {
		s, d := src.As4(), dst.As4()
		sum = Checksum(s[:], 0)
		sum = Checksum(d[:], sum)
	} else {
		s, d := src.As16(), dst.As16()
		sum = Checksum(s[:], 0)
		sum = Checksum(d[:], sum)
	}
	sum = ChecksumCombine(sum, uint16(proto))
	sum = ChecksumCombine(sum, uint16(length>>16))
	return ChecksumCombine(sum, uint16(length))
}

// ChecksumDelta is the one's complement difference between two sets of
// 16-bit aligned header words: the sum of ~old and new (RFC 1624). It is
// what a rewrite of those words adds to every checksum that covers them.
type ChecksumDelta uint16

// AddressDelta returns the delta of replacing address old by new. Both must
// be of the same family.
func AddressDelta(old, new netip.Addr) ChecksumDelta {
	if old.Is4() {
		o, n := old.As4(), new.As4()
		return ChecksumDelta(ChecksumCombine(^Checksum(o[:], 0), Checksum(n[:], 0)))
	}
	o, n := old.As16(), new.As16()
	return ChecksumDelta(ChecksumCombine(^Checksum(o[:], 0), Checksum(n[:], 0)))
}

// WordDelta returns the delta of replacing the 16-bit word old by new.
func WordDelta(old, new uint16) ChecksumDelta {
	return ChecksumDelta(ChecksumCombine(^old, new))
}

// Add returns the delta of both changes.
func (d ChecksumDelta) Add(e ChecksumDelta) ChecksumDelta {
	return ChecksumDelta(ChecksumCombine(uint16(d), uint16(e)))
}

// UpdateChecksum returns a full (complemented) checksum field after the
// change d: RFC 1624 eqn. 3, HC' = ~(~HC + ~m + m'), as the kernel's
// tcp_fast_csum_update.
func UpdateChecksum(field uint16, d ChecksumDelta) uint16 {
	return ^ChecksumCombine(^field, uint16(d))
}

// UpdatePartialChecksum returns the checksum field of a CHECKSUM_PARTIAL
// packet after the change d of pseudo-header words. Such a field holds the
// pseudo-header sum itself, not complemented (the device or the kernel's
// software fallback finishes it), so the delta is added without the
// complements: the kernel's tcp_partial_csum_update. Changes to words the
// device will sum itself (ports) must not be applied here.
func UpdatePartialChecksum(field uint16, d ChecksumDelta) uint16 {
	return ChecksumCombine(field, uint16(d))
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// CRC32c returns the SCTP checksum (RFC 9260 Appendix A) of b, a whole SCTP
// packet whose checksum field is zero.
func CRC32c(b []byte) uint32 {
	return crc32.Checksum(b, castagnoli)
}
