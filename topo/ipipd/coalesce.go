package ipipd

import (
	"encoding/binary"

	"golang.org/x/sys/unix"
)

// coalescer merges consecutive inner TCP segments of one flow into one GSO
// packet for the TUN device, as the kernel's GRO merges them on a real
// link before its tunnel driver hands them on. A director splits each
// 64 KB TCP packet into some 45 tunnelled segments; written one by one,
// each would cross the server's whole TCP receive path (and most would be
// acknowledged on their own), which made a userspace TUN real server ten
// times slower than the others.
//
// Segments merge while they continue the pending packet exactly: same
// addresses, ports, TOS, TTL, DF, acknowledgment, window and TCP options,
// the next sequence number, ACK alone among the flags (PSH allowed on the
// last), no IP options or fragments, and every payload but the last as
// long as the first. The merged packet goes to the kernel with a partial
// checksum (NEEDS_CSUM), which a local receiver trusts as it trusts veth's;
// the payloads' own checksums are not verified again.
type coalescer struct {
	buf  []byte // virtio-net header and the pending packet
	n    int    // bytes of buf in use; 0 when nothing is pending
	segs int    // segments in the pending packet
	mss  int    // payload bytes of its first segment
	next uint32 // the sequence number that continues it
	done bool   // it takes no more segments (a short or PSH segment ended it)
}

// Offsets and limits of the inner packet (after the virtio-net header).
const (
	ipHdrLen   = 20 // without options: packets with options are not merged
	maxIPTotal = 65535
	tcpFlagPSH = 0x08
	tcpFlagACK = 0x10
	// vnetGSOTCPv4 is VIRTIO_NET_HDR_GSO_TCPV4.
	vnetGSOTCPv4 = 1
	// vnetGSOSize and vnetCsumOffset are the remaining virtio-net header fields.
	vnetGSOSize    = 4
	vnetCsumOffset = 8
)

func newCoalescer() *coalescer { return &coalescer{buf: make([]byte, vnetHdrLen+maxIPTotal)} }

// tcpSegment returns the TCP header length and payload length of p
// (virtio-net header and inner IPv4 packet, as Decap returns it) if it is
// a TCP segment the coalescer may merge: no IP options, not a fragment, no
// GSO, payload, and ACK (with PSH at most) as its flags.
func tcpSegment(p []byte) (thl, payload int, ok bool) {
	if len(p) < vnetHdrLen+ipHdrLen+20 || p[vnetGSOType] != 0 {
		return 0, 0, false
	}
	ip := p[vnetHdrLen:]
	if ip[0] != 0x45 || ip[9] != unix.IPPROTO_TCP || binary.BigEndian.Uint16(ip[6:])&0x3fff != 0 {
		return 0, 0, false
	}
	tcp := ip[ipHdrLen:]
	thl = int(tcp[12]>>4) * 4
	payload = len(ip) - ipHdrLen - thl
	if thl < 20 || payload <= 0 || tcp[13]&^tcpFlagPSH != tcpFlagACK {
		return 0, 0, false
	}
	return thl, payload, true
}

// merge appends p to the pending packet if it continues it, and reports
// whether it did.
func (c *coalescer) merge(p []byte) bool {
	if c.n == 0 || c.done {
		return false
	}
	thl, payload, ok := tcpSegment(p)
	if !ok || payload > c.mss || c.n-vnetHdrLen+payload > maxIPTotal {
		return false
	}
	ip, cur := p[vnetHdrLen:], c.buf[vnetHdrLen:c.n]
	tcp, ctcp := ip[ipHdrLen:], cur[ipHdrLen:]
	switch {
	case ip[1] != cur[1] || ip[6] != cur[6] || ip[8] != cur[8]: // TOS, DF, TTL
		return false
	case string(ip[12:20]) != string(cur[12:20]): // addresses
		return false
	case int(ctcp[12]>>4)*4 != thl || string(tcp[:4]) != string(ctcp[:4]): // header length, ports
		return false
	case binary.BigEndian.Uint32(tcp[4:]) != c.next:
		return false
	case string(tcp[8:12]) != string(ctcp[8:12]) || string(tcp[14:16]) != string(ctcp[14:16]): // ack, window
		return false
	case string(tcp[20:thl]) != string(ctcp[20:thl]): // options
		return false
	}
	c.n += copy(c.buf[c.n:], ip[ipHdrLen+thl:])
	c.segs++
	c.next += uint32(payload)
	if flags := tcp[13]; flags&tcpFlagPSH != 0 || payload < c.mss {
		ctcp[13] |= flags & tcpFlagPSH
		c.done = true
	}
	return true
}

// start makes p the pending packet if it is a segment others may join,
// and reports whether it did. Nothing may be pending.
func (c *coalescer) start(p []byte) bool {
	_, payload, ok := tcpSegment(p)
	if !ok {
		return false
	}
	c.n = copy(c.buf, p)
	c.segs = 1
	c.mss = payload
	tcp := p[vnetHdrLen+ipHdrLen:]
	c.next = binary.BigEndian.Uint32(tcp[4:]) + uint32(payload)
	c.done = tcp[13]&tcpFlagPSH != 0
	return true
}

// take returns the pending packet, ready for the TUN device, and clears it
// (nil when nothing is pending). A merged packet gets its IPv4 length and
// checksum, a GSO TCPv4 virtio-net header, and in its TCP checksum field
// the pseudo-header sum a partial checksum starts from.
func (c *coalescer) take() []byte {
	if c.n == 0 {
		return nil
	}
	out := c.buf[:c.n]
	c.n = 0
	if c.segs == 1 {
		return out
	}
	ip := out[vnetHdrLen:]
	total := len(ip)
	binary.BigEndian.PutUint16(ip[2:], uint16(total))
	ip[10], ip[11] = 0, 0
	binary.BigEndian.PutUint16(ip[10:], ^fold(sum(ip[:ipHdrLen], 0)))
	tcp := ip[ipHdrLen:]
	thl := int(tcp[12]>>4) * 4
	pseudo := sum(ip[12:20], uint32(unix.IPPROTO_TCP)+uint32(total-ipHdrLen))
	binary.BigEndian.PutUint16(tcp[16:], fold(pseudo))

	h := out[:vnetHdrLen]
	h[vnetFlags], h[vnetGSOType] = vnetFlagNeedsCsum, vnetGSOTCPv4
	binary.NativeEndian.PutUint16(h[vnetHdrLenOff:], uint16(ipHdrLen+thl))
	binary.NativeEndian.PutUint16(h[vnetGSOSize:], uint16(c.mss))
	binary.NativeEndian.PutUint16(h[vnetCsumStart:], ipHdrLen)
	binary.NativeEndian.PutUint16(h[vnetCsumOffset:], 16)
	return out
}

// sum adds b as big-endian 16-bit words to s (the Internet checksum's
// one's-complement sum, not yet folded).
func sum(b []byte, s uint32) uint32 {
	for ; len(b) >= 2; b = b[2:] {
		s += uint32(binary.BigEndian.Uint16(b))
	}
	if len(b) == 1 {
		s += uint32(b[0]) << 8
	}
	return s
}

func fold(s uint32) uint16 {
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	return uint16(s)
}
