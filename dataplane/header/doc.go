// Package header holds typed views over the bytes of the headers the
// director reads and rewrites — Ethernet, IPv4, IPv6 (with its extension
// header chain), TCP, UDP, SCTP, ICMPv4, ICMPv6 and the virtio_net_hdr that
// AF_PACKET prepends with PACKET_VNET_HDR — and the Internet checksum
// helpers every rewrite uses.
//
// A view is a named byte slice (header.IPv4(b)) with accessors; nothing is
// copied out and nothing is allocated. Views do not check bounds beyond what
// the Go runtime checks: the caller validates lengths first (IPv4.IsValid,
// the parse package), so an accessor on a short slice is a bug in the
// caller, not a wire condition.
//
// The package does not decide anything about packets (that is parse and
// xmit) and does no I/O.
package header
