package engine

import (
	"net/netip"
	"time"

	"github.com/lvslab/lvslab/dataplane"
	"github.com/lvslab/lvslab/dataplane/header"
	"github.com/lvslab/lvslab/dataplane/packetio"
	"github.com/lvslab/lvslab/dataplane/parse"
	"github.com/lvslab/lvslab/dataplane/xmit"
)

// outbound is a packet that is neither for a virtual address nor, as far
// as the engine is concerned, for the director: the reply of a masqueraded
// connection (handle_response) if the core knows it, else the kernel's
// business (which, with ip_forward off, drops it). It reports whether the
// core knew the packet.
func (e *Engine) outbound(b *batch, pk *packetio.Packet, p *parse.Packet, now time.Time) bool {
	cp := corePacket(p)
	v := e.core.Out(&cp, now)
	if v.Action != dataplane.Forward || v.Method != dataplane.MethodMasq {
		return false
	}
	if p.TTL <= 1 {
		e.cnt.Dropped++
		return true
	}
	frame := pk.Frame()
	if p.IsIPv4() { // the director forwards the reply: TTL − 1
		header.IPv4(frame[p.L3Off:]).DecrementTTL()
	} else {
		header.IPv6(frame[p.L3Off:]).SetHopLimit(p.TTL - 1)
	}
	xmit.NATOut(frame, pk.VnetHdr(), p, v.Virtual.Addr(), v.Virtual.Port())
	if e.sendTo(b, pk, p.Dst, now) {
		e.cnt.Out++
	}
	return true
}

// sendTo sets the frame's link addresses for the hop towards dst and
// queues it on that hop's interface.
func (e *Engine) sendTo(b *batch, pk *packetio.Packet, dst netip.Addr, now time.Time) bool {
	h, ok := e.hops.lookup(dst, now)
	out := e.ifaceOf(h.ifindex)
	if !ok || out == nil {
		e.cnt.NoRoute++
		return false
	}
	xmit.SetLink(pk.Frame(), out.mac, h.mac)
	e.send(b, out, pk, header.EthernetSize, routeMTU(h, out))
	return true
}

func quotedPacket(p *parse.Packet) dataplane.Packet {
	return dataplane.Packet{Proto: p.Inner.Proto, Src: p.Inner.Src, Dst: p.Inner.Dst,
		SrcPort: p.Inner.SrcPort, DstPort: p.Inner.DstPort}
}

// inboundICMP relays an ICMP error sent to a virtual address about a packet
// the director sent to a client (ip_vs_in_icmp) to the connection's real
// server.
func (e *Engine) inboundICMP(b *batch, pk *packetio.Packet, p *parse.Packet, now time.Time) {
	q := quotedPacket(p)
	v := e.core.InRelated(&q, p.Len, now)
	if v.Action != dataplane.Forward {
		e.cnt.Dropped++
		return
	}
	rip := v.Dest.Addr()
	frame := pk.Frame()
	switch v.Method {
	case dataplane.MethodMasq:
		xmit.NATICMPIn(frame, p, rip, v.Dest.Port())
	case dataplane.MethodRoute:
	case dataplane.MethodTunnel:
		h, ok := e.hops.lookup(rip, now)
		out := e.ifaceOf(h.ifindex)
		if !ok || out == nil {
			e.cnt.NoRoute++
			return
		}
		e.encapsulate(b, out, pk, p, h, rip)
		e.cnt.ICMPIn++
		return
	default:
		return
	}
	if e.sendTo(b, pk, rip, now) {
		e.cnt.ICMPIn++
	}
}

// outboundICMP relays an ICMP error from a masqueraded real server (or the
// path to it) about a client's packet to the client (ip_vs_out_icmp).
func (e *Engine) outboundICMP(b *batch, pk *packetio.Packet, p *parse.Packet, now time.Time) {
	q := quotedPacket(p)
	v := e.core.OutRelated(&q, p.Len, now)
	if v.Action != dataplane.Forward || v.Method != dataplane.MethodMasq {
		return
	}
	xmit.NATICMPOut(pk.Frame(), p, v.Virtual.Addr(), v.Virtual.Port())
	if e.sendTo(b, pk, p.Dst, now) {
		e.cnt.ICMPOut++
	}
}

// tunnelError answers an ICMP error about one of the director's IPIP
// packets (fragmentation needed on the way to a TUN real server) to the
// client whose packet was inside, from the VIP.
func (e *Engine) tunnelError(b *batch, pk *packetio.Packet, p *parse.Packet, now time.Time) {
	out := b.peekSpare()
	if out == nil {
		return
	}
	n := xmit.TunnelICMP(out[packetio.Headroom:], pk.Frame(), p, 0)
	if n == 0 {
		return
	}
	b.nspare++
	reply := packetio.Packet{Buf: out, Off: packetio.Headroom, Len: n}
	if e.sendTo(b, &reply, p.Inner.Src, now) {
		e.cnt.Replies++
	}
}
