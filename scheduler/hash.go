package scheduler

import (
	"encoding/binary"
	"math/bits"
	"net/netip"
)

// fold is the 32-bit key the hashing schedulers derive from an address
// (§0.2): an IPv4 address in host byte order, or for IPv6 the XOR of the
// four 32-bit words, also taken in host byte order.
func fold(a netip.Addr) uint32 {
	if a.Is4() {
		b := a.As4()
		return binary.BigEndian.Uint32(b[:])
	}
	b := a.As16()
	return binary.BigEndian.Uint32(b[0:]) ^ binary.BigEndian.Uint32(b[4:]) ^
		binary.BigEndian.Uint32(b[8:]) ^ binary.BigEndian.Uint32(b[12:])
}

// hash32 is the kernel's hash_32 (include/linux/hash.h): the top b bits of
// v × GOLDEN_RATIO_32.
func hash32(v uint32, b uint) uint32 { return (v * 0x61C88647) >> (32 - b) }

// flowPort is the port sh-port and mh-port hash: the client's source port
// for TCP, UDP and SCTP, 0 for any other protocol.
func flowPort(f Flow) uint16 {
	switch f.Proto {
	case 6, 17, 132:
		return f.SrcPort
	}
	return 0
}

// sipKey is an hsiphash_key_t of a 64-bit kernel.
type sipKey struct{ k0, k1 uint64 }

// hsiphash32 is the kernel's hsiphash of the four bytes of v in host (little
// endian) order, as a 64-bit kernel computes it: SipHash-1-3, truncated to
// 32 bits ("on 64-bit, we make HalfSipHash1-3 actually be SipHash1-3").
func hsiphash32(v uint32, k sipKey) uint32 {
	v0, v1, v2, v3 := sipInit(k)
	b := uint64(4)<<56 | uint64(v)
	return sipFinal(v0, v1, v2, v3, b)
}

func sipInit(k sipKey) (v0, v1, v2, v3 uint64) {
	return 0x736f6d6570736575 ^ k.k0, 0x646f72616e646f6d ^ k.k1,
		0x6c7967656e657261 ^ k.k0, 0x7465646279746573 ^ k.k1
}

// sipFinal absorbs the last word b (length in its top byte) with one
// compression round and runs the three finalization rounds.
func sipFinal(v0, v1, v2, v3, b uint64) uint32 {
	v3 ^= b
	v0, v1, v2, v3 = sipRound(v0, v1, v2, v3)
	v0 ^= b
	v2 ^= 0xff
	v0, v1, v2, v3 = sipRound(v0, v1, v2, v3)
	v0, v1, v2, v3 = sipRound(v0, v1, v2, v3)
	v0, v1, v2, v3 = sipRound(v0, v1, v2, v3)
	return uint32(v0 ^ v1 ^ v2 ^ v3)
}

func sipRound(v0, v1, v2, v3 uint64) (uint64, uint64, uint64, uint64) {
	v0 += v1
	v1 = bits.RotateLeft64(v1, 13)
	v1 ^= v0
	v0 = bits.RotateLeft64(v0, 32)
	v2 += v3
	v3 = bits.RotateLeft64(v3, 16)
	v3 ^= v2
	v0 += v3
	v3 = bits.RotateLeft64(v3, 21)
	v3 ^= v0
	v2 += v1
	v1 = bits.RotateLeft64(v1, 17)
	v1 ^= v2
	v2 = bits.RotateLeft64(v2, 32)
	return v0, v1, v2, v3
}
