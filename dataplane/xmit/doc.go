// Package xmit holds the director's transmitters (spec §5): pure functions
// that rewrite a parsed frame in place for NAT, DR or TUN forwarding, apply
// the per-hop rules every method shares (TTL, the MTU rule), relay ICMP
// errors that belong to a connection with their quoted headers rewritten,
// and build the ICMP errors the director itself sends.
//
// A frame is an Ethernet frame; vnet is the virtio_net_hdr that came with
// it (nil for a frame without offload information). Every checksum change
// goes through header's RFC 1624 helpers, with CHECKSUM_PARTIAL packets
// (vnet.NeedsCsum) adjusted as the kernel adjusts them. Nothing here
// allocates, looks up a connection or does I/O: the core decides, xmit
// rewrites.
package xmit

// Verdict is what the caller does after a transmitter ran.
type Verdict uint8

const (
	// Forward: send the rewritten frame towards the real server (or, for
	// replies and relayed errors, the client).
	Forward Verdict = iota
	// Reply: drop the frame; the ICMP error written to the reply buffer
	// goes back out of the interface the frame came in on.
	Reply
	// Drop: drop the frame silently.
	Drop
	// Fragment: forward, but the IPv4 packet has no DF and exceeds the
	// MTU, so the kernel would fragment it (ignore_df): FragmentIPv4 it
	// into MTU-sized frames before sending.
	Fragment
)

func (v Verdict) String() string {
	switch v {
	case Forward:
		return "forward"
	case Reply:
		return "reply"
	case Fragment:
		return "fragment"
	}
	return "drop"
}
