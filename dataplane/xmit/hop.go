package xmit

import (
	"github.com/lvslab/lvslab/dataplane/header"
	"github.com/lvslab/lvslab/dataplane/parse"
)

// Hop is the route to a real server as the transmit checks see it
// (__ip_vs_get_out_rt): the route MTU, and whether the packet will be
// tunnelled (TUN: the MTU shrinks by the outer header, and the MTU rule
// applies only with pmtu_disc).
type Hop struct {
	MTU      int  // MTU of the route to the real server
	Tunnel   bool // IP-in-IP encapsulation follows
	Outer6   bool // the tunnel's outer header is IPv6 (the RIP is IPv6)
	PMTUDisc bool // sysctl pmtu_disc (default 1); TUN only
}

// Check applies the per-hop rules every forwarding method shares (§5), in
// the kernel's order: a TTL (hop limit) that was ≤ 1 gets ICMP time
// exceeded; otherwise it is decremented (the IPv4 checksum updated
// incrementally); then a packet that no longer fits the MTU gets ICMP
// fragmentation-needed (IPv4 with DF) or packet-too-big (IPv6) carrying
// the MTU it must fit. GSO packets are exempt (they are segmented to fit
// later), and so are relayed ICMP errors. On Reply, the error was written
// to reply and its length is returned.
func (h Hop) Check(reply, frame []byte, vnet header.VirtioNetHdr, p *parse.Packet) (Verdict, int) {
	v4 := p.IsIPv4()
	if p.TTL <= 1 {
		t, c := header.ICMPv6TimeExceeded, header.ICMPv6HopLimitExceed
		if v4 {
			t, c = header.ICMPv4TimeExceeded, header.ICMPv4TTLExceeded
		}
		return reply1(ICMPError(reply, frame, p, p.Dst, t, c, 0))
	}
	if v4 {
		header.IPv4(frame[p.L3Off:]).DecrementTTL()
	} else {
		ip := header.IPv6(frame[p.L3Off:])
		ip.SetHopLimit(ip.HopLimit() - 1)
	}
	p.TTL--

	mtu := h.MTU
	if h.Tunnel {
		// The route is the outer family's: its minimum MTU applies.
		if h.Outer6 {
			mtu -= header.IPv6FixedHeaderSize
			if mtu < header.IPv6MinimumMTU {
				return Drop, 0
			}
		} else {
			mtu -= header.IPv4MinimumSize
			if mtu < header.IPv4MinimumMTU {
				return Drop, 0
			}
		}
	}
	if p.Len <= mtu || p.Kind == parse.KindICMPError || vnet != nil && vnet.IsGSO() {
		return Forward, 0
	}
	if !v4 {
		return reply1(ICMPError(reply, frame, p, p.Dst, header.ICMPv6PacketTooBig, 0, uint32(mtu)))
	}
	if !header.IPv4(frame[p.L3Off:]).DF() || h.Tunnel && !h.PMTUDisc {
		return Fragment, 0
	}
	return reply1(ICMPError(reply, frame, p, p.Dst, header.ICMPv4DestUnreach, header.ICMPv4FragNeeded, uint32(mtu)))
}

func reply1(n int) (Verdict, int) {
	if n == 0 {
		return Drop, 0
	}
	return Reply, n
}
