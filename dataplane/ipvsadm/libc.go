package ipvsadm

import (
	"math"
	"net/netip"
	"strings"
)

// This file holds the few C library routines whose exact acceptance rules
// show through ipvsadm's behaviour: strtol, atoi, inet_aton and inet_ntop
// as glibc implements them.

// cString cuts s at its first NUL byte, as a C program sees an argument.
func cString(s string) string {
	if i := strings.IndexByte(s, 0); i >= 0 {
		return s[:i]
	}
	return s
}

func isCSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// strtol is glibc strtol for base 10 or 0 (0 accepts 0x hex and 0 octal):
// leading white space, an optional sign, digits. It returns the value
// (clamped to the int64 range on overflow), the number of bytes consumed
// (0 when no digits were found) and whether the value overflowed (ERANGE).
func strtol(s string, base int) (v int64, n int, overflow bool) {
	u, neg, n, overflow := strtoulCore(s, base)
	if n == 0 {
		return 0, 0, false
	}
	switch {
	case overflow || (!neg && u > math.MaxInt64):
		if neg {
			return math.MinInt64, n, true
		}
		return math.MaxInt64, n, true
	case neg && u > 1<<63:
		return math.MinInt64, n, true
	case neg:
		return -int64(u), n, false
	}
	return int64(u), n, false
}

// strtoulCore parses what strtol and strtoul share: the magnitude, the sign,
// the bytes consumed and whether the magnitude overflowed 64 bits.
func strtoulCore(s string, base int) (u uint64, neg bool, n int, overflow bool) {
	i := 0
	for i < len(s) && isCSpace(s[i]) {
		i++
	}
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		neg = s[i] == '-'
		i++
	}
	if base == 0 {
		switch {
		case i+1 < len(s) && s[i] == '0' && (s[i+1] == 'x' || s[i+1] == 'X') && i+2 < len(s) && hexVal(s[i+2]) >= 0:
			base, i = 16, i+2
		case i < len(s) && s[i] == '0':
			base = 8
		default:
			base = 10
		}
	}
	start := i
	for ; i < len(s); i++ {
		d := hexVal(s[i])
		if d < 0 || d >= base {
			break
		}
		if u > (math.MaxUint64-uint64(d))/uint64(base) {
			overflow = true
		}
		u = u*uint64(base) + uint64(d)
	}
	if i == start {
		return 0, false, 0, false
	}
	return u, neg, i, overflow
}

func hexVal(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

// stringToNumber is ipvsadm's string_to_number: the whole string must be a
// decimal number in [min, max]; ok is false otherwise.
func stringToNumber(s string, min, max int64) (int64, bool) {
	v, n, overflow := strtol(s, 10)
	if n == 0 || n != len(s) || overflow || v < min || v > max {
		return 0, false
	}
	return v, true
}

// atoi is glibc atoi: (int) strtol(s, NULL, 10), no error reporting.
func atoi(s string) int32 {
	v, _, _ := strtol(s, 10)
	return int32(v)
}

// inetAton is glibc inet_aton: one to four parts separated by dots, each
// decimal, octal (0...) or hex (0x...), the last part filling the remaining
// bytes; trailing text is allowed after a white-space character.
func inetAton(s string) (netip.Addr, bool) {
	var parts []uint32
	i := 0
	for {
		if i >= len(s) || !isDigit(s[i]) {
			return netip.Addr{}, false
		}
		u, _, n, overflow := strtoulCore(s[i:], 0)
		if overflow || u > math.MaxUint32 {
			return netip.Addr{}, false
		}
		i += n
		if i < len(s) && s[i] == '.' {
			if len(parts) > 2 || u > 0xff {
				return netip.Addr{}, false
			}
			parts = append(parts, uint32(u))
			i++
			continue
		}
		if i < len(s) && !isCSpace(s[i]) {
			return netip.Addr{}, false
		}
		max := []uint32{0xffffffff, 0xffffff, 0xffff, 0xff}[len(parts)]
		if u > uint64(max) {
			return netip.Addr{}, false
		}
		v := uint32(u)
		for j, p := range parts {
			v |= p << (24 - 8*j)
		}
		return addrFromUint32(v), true
	}
}

// inetPton6 is inet_pton(AF_INET6): an IPv6 literal, no zone.
func inetPton6(s string) (netip.Addr, bool) {
	if strings.IndexByte(s, ':') < 0 || strings.IndexByte(s, '%') >= 0 {
		return netip.Addr{}, false
	}
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is6() {
		return netip.Addr{}, false
	}
	return a, true
}

// inetPton4 is inet_pton(AF_INET): exactly four decimal octets.
func inetPton4(s string) (netip.Addr, bool) {
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is4() {
		return netip.Addr{}, false
	}
	return a, true
}

func addrFromUint32(v uint32) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// inetNtop is glibc inet_ntop: dotted quad for IPv4; for IPv6 the longest
// run (at least two) of zero words becomes "::", and an address whose first
// six words are zero, or five zero words and ffff, ends in a dotted quad.
func inetNtop(a netip.Addr) string {
	if a.Is4() {
		return a.String()
	}
	b := a.As16()
	var w [8]uint16
	for i := range w {
		w[i] = uint16(b[2*i])<<8 | uint16(b[2*i+1])
	}
	bestBase, bestLen, curBase, curLen := -1, 0, -1, 0
	for i := 0; i < 8; i++ {
		if w[i] == 0 {
			if curBase < 0 {
				curBase, curLen = i, 1
			} else {
				curLen++
			}
			continue
		}
		if curBase >= 0 {
			if bestBase < 0 || curLen > bestLen {
				bestBase, bestLen = curBase, curLen
			}
			curBase = -1
		}
	}
	if curBase >= 0 && (bestBase < 0 || curLen > bestLen) {
		bestBase, bestLen = curBase, curLen
	}
	if bestBase >= 0 && bestLen < 2 {
		bestBase = -1
	}
	var sb strings.Builder
	for i := 0; i < 8; i++ {
		if bestBase >= 0 && i >= bestBase && i < bestBase+bestLen {
			if i == bestBase {
				sb.WriteByte(':')
			}
			continue
		}
		if i != 0 {
			sb.WriteByte(':')
		}
		if i == 6 && bestBase == 0 && (bestLen == 6 || (bestLen == 5 && w[5] == 0xffff)) {
			sb.WriteString(netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]}).String())
			break
		}
		sb.WriteString(strings.ToLower(hex16(w[i])))
	}
	if bestBase >= 0 && bestBase+bestLen == 8 {
		sb.WriteByte(':')
	}
	return sb.String()
}

func hex16(v uint16) string {
	const digits = "0123456789abcdef"
	if v == 0 {
		return "0"
	}
	var buf [4]byte
	i := len(buf)
	for v > 0 {
		i--
		buf[i] = digits[v&0xf]
		v >>= 4
	}
	return string(buf[i:])
}
