package engine

import (
	"net/netip"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lvslab/lvslab/dataplane"
	"github.com/lvslab/lvslab/dataplane/header"
	"github.com/lvslab/lvslab/dataplane/packetio"
	"github.com/lvslab/lvslab/dataplane/parse"
	"github.com/lvslab/lvslab/dataplane/xmit"
)

// spareFrame is the size of a spare buffer: an ICMP error, one TCP segment
// of a split GSO packet (with the tunnel's headroom), at jumbo MTUs.
const spareFrame = packetio.Headroom + 9216 + header.EthernetSize

// maxSegments bounds the segments of one GSO packet (64 KB at an MSS of
// 1024 and above; smaller MSS values are split in several rounds of sends).
const maxSegments = 64

// batch is a worker: its sockets (one per interface, in Engine.ifs order),
// send queues and working memory, allocated once.
type batch struct {
	socks     []packetio.Socket
	sockStats []packetio.Stats // the sockets' counters as of the last batch (under the lock)
	poller    *packetio.Poller
	out       [][]packetio.Packet // per interface
	rx        []packetio.Packet
	spare     [][]byte // spare buffers for frames the engine makes
	nspare    int
	outs      [][]byte // SegmentTCP's views into spare buffers
	lens      []int
}

func newBatch(n, ifaces int) *batch {
	b := &batch{rx: packetio.NewBatch(n), outs: make([][]byte, maxSegments), lens: make([]int, maxSegments),
		socks: make([]packetio.Socket, ifaces), sockStats: make([]packetio.Stats, ifaces), out: make([][]packetio.Packet, ifaces)}
	for i := range b.out {
		b.out[i] = make([]packetio.Packet, 0, n)
	}
	mem := make([]byte, (n+maxSegments)*spareFrame)
	for i := range n + maxSegments {
		b.spare = append(b.spare, mem[i*spareFrame:(i+1)*spareFrame:(i+1)*spareFrame])
	}
	return b
}

// loop is a worker's packet goroutine: wait, drain each ready socket a
// batch at a time, decide the batch under the lock, send.
func (e *Engine) loop(b *batch) error {
	ready := make([]bool, len(e.ifs))
	for {
		if err := b.poller.Wait(ready); err != nil {
			return err
		}
		for i, ifc := range e.ifs {
			if !ready[i] {
				continue
			}
			for {
				n, err := b.socks[i].ReadBatch(b.rx)
				if err != nil {
					return err
				}
				if n == 0 {
					break
				}
				now := time.Now()
				e.mu.Lock()
				for i, s := range b.socks {
					b.sockStats[i] = s.Counters()
				}
				e.cnt.Frames += uint64(n)
				for k := range b.rx[:n] {
					e.handle(b, ifc, &b.rx[k], now)
				}
				e.mu.Unlock()
				if err := e.flush(b); err != nil {
					return err
				}
				if n < len(b.rx) {
					break
				}
			}
		}
	}
}

// flush sends every frame the worker queued and frees its spare buffers.
// It runs outside the lock (workers send in parallel), or inside it when a
// batch runs out of spare buffers.
func (e *Engine) flush(b *batch) error {
	for i, q := range b.out {
		if len(q) == 0 {
			continue
		}
		_, err := b.socks[i].WriteBatch(q)
		clear(q)
		b.out[i] = q[:0]
		if err != nil {
			return err
		}
	}
	b.nspare = 0
	return nil
}

// queue puts a frame on the worker's send queue for ifc, sending first
// when it is full.
func (e *Engine) queue(b *batch, ifc *iface, pk packetio.Packet) {
	if q := b.out[ifc.pos]; len(q) == cap(q) {
		b.socks[ifc.pos].WriteBatch(q)
		b.out[ifc.pos] = q[:0]
	}
	b.out[ifc.pos] = append(b.out[ifc.pos], pk)
}

// peekSpare returns the next spare buffer without taking it (nspare++
// takes it), or nil when the batch used them all.
func (b *batch) peekSpare() []byte {
	if b.nspare == len(b.spare) {
		return nil
	}
	return b.spare[b.nspare]
}

// takeSpare returns a spare buffer, or nil when the batch used them all.
func (b *batch) takeSpare() []byte {
	if b.nspare == len(b.spare) {
		return nil
	}
	s := b.spare[b.nspare]
	b.nspare++
	return s
}

func (e *Engine) ifaceOf(index int) *iface {
	for _, ifc := range e.ifs {
		if ifc.index == index {
			return ifc
		}
	}
	return nil
}

// handle decides one received frame. Frames that are not the director's
// business (ARP, traffic to its own addresses, malformed frames, which the
// kernel drops itself) are left to the kernel, which sees them anyway.
func (e *Engine) handle(b *batch, in *iface, pk *packetio.Packet, now time.Time) {
	if pk.PktType == unix.PACKET_OTHERHOST {
		return
	}
	frame, vnet := pk.Frame(), pk.VnetHdr()
	var p parse.Packet
	r := parse.Frame(frame, vnet, &p)
	e.cnt.Reasons.Add(r)
	if r == parse.Fragment {
		e.defragment(b, in, pk, &p, now)
		return
	}
	if r != parse.OK || p.Kind == parse.KindOther {
		return
	}
	toVIP := e.vips[p.Dst]
	if p.Kind == parse.KindTransport && e.fwm != nil && e.markedTap(b, in, pk, &p, toVIP, now) {
		return
	}
	switch {
	case p.Kind == parse.KindTransport && toVIP:
		e.inbound(b, in, pk, &p, 0, now)
	case p.Kind == parse.KindTransport:
		e.outbound(b, pk, &p, now)
	case p.Tunneled:
		e.tunnelError(b, pk, &p, now)
	case toVIP || e.markVIPs[p.Dst]:
		e.inboundICMP(b, pk, &p, now)
	default:
		e.outboundICMP(b, pk, &p, now)
	}
}

func corePacket(p *parse.Packet) dataplane.Packet {
	return dataplane.Packet{Proto: p.Proto, Src: p.Src, Dst: p.Dst, SrcPort: p.SrcPort, DstPort: p.DstPort,
		TCPFlags: p.TCPFlags, Chunk: p.SCTPChunk, Len: p.Len}
}

// inbound is a client's packet to a virtual address (ip_vs_in), with the
// firewall mark the queue path read (0 on the tap path). It returns the
// core's action.
func (e *Engine) inbound(b *batch, in *iface, pk *packetio.Packet, p *parse.Packet, mark uint32, now time.Time) dataplane.Action {
	cp := corePacket(p)
	cp.Mark = mark
	v := e.core.In(&cp, now)
	switch v.Action {
	case dataplane.Forward:
		if v.Method == dataplane.MethodMasq {
			// NAT replies go back to this client through the director.
			e.hops.learn(p.Src, header.Ethernet(pk.Frame()).Source(), in.index)
		}
		e.transmit(b, in, pk, p, v, now)
	case dataplane.Reject:
		if out := b.takeSpare(); out != nil {
			if n := xmit.PortUnreachable(out[packetio.Headroom:], pk.Frame(), p); n > 0 {
				e.cnt.Replies++
				e.queue(b, in, packetio.Packet{Buf: out, Off: packetio.Headroom, Len: n})
			}
		}
	default:
		// Drop, or Accept: no service took it. The kernel's drop sets hold
		// only the services, so a packet no service matches reaches the
		// director's own stack, which answers it (a RST, an echo reply);
		// the engine must not.
		e.cnt.Dropped++
	}
	return v.Action
}

// transmit sends a scheduled packet to its real server by the connection's
// forwarding method (ip_vs_nat_xmit, ip_vs_dr_xmit, ip_vs_tunnel_xmit).
func (e *Engine) transmit(b *batch, in *iface, pk *packetio.Packet, p *parse.Packet, v dataplane.Verdict, now time.Time) {
	rip := v.Dest.Addr()
	h, ok := e.hops.lookup(rip, now)
	out := e.ifaceOf(h.ifindex)
	if !ok || out == nil {
		e.cnt.NoRoute++
		return
	}
	frame, vnet := pk.Frame(), pk.VnetHdr()
	tunnel := v.Method == dataplane.MethodTunnel
	hp := xmit.Hop{MTU: h.mtu, Tunnel: tunnel, PMTUDisc: true}
	if hp.MTU == 0 {
		hp.MTU = out.mtu
	}
	check := *p
	if tunnel && vnet.IsGSO() && p.Proto == header.ProtocolTCP {
		// The segments, not the super-packet, must fit the tunnel: check
		// the first one's size as ip_vs_tunnel_xmit checks each GSO
		// segment (skb_gso_validate_network_len).
		check.Len = min(p.Len, p.L4Off-p.L3Off+header.TCP(frame[p.L4Off:]).DataOffset()+int(vnet.GSOSize()))
		vnet = nil
	}
	reply := b.peekSpare()
	if reply == nil {
		e.cnt.Unsendable++
		return
	}
	verdict, n := hp.Check(reply[packetio.Headroom:], frame, vnet, &check)
	p.TTL = check.TTL
	switch verdict {
	case xmit.Reply:
		b.nspare++
		e.cnt.Replies++
		e.queue(b, in, packetio.Packet{Buf: reply, Off: packetio.Headroom, Len: n})
		return
	case xmit.Forward, xmit.Fragment: // send fragments what does not fit
	default:
		e.cnt.Unsendable++
		return
	}
	vnet = pk.VnetHdr()
	switch v.Method {
	case dataplane.MethodMasq:
		xmit.NATIn(frame, vnet, p, rip, v.Dest.Port())
		xmit.SetLink(frame, out.mac, h.mac)
	case dataplane.MethodRoute:
		xmit.DR(frame, out.mac, h.mac)
	case dataplane.MethodTunnel:
		e.encapsulate(b, out, pk, p, h, rip)
		e.cnt.In++
		return
	default:
		e.cnt.Unsendable++
		return
	}
	e.cnt.In++
	e.send(b, out, pk, p.L3Off, hp.MTU)
}

// encapsulate sends the packet in IPIP to h, splitting a GSO packet into
// its segments first.
func (e *Engine) encapsulate(b *batch, out *iface, pk *packetio.Packet, p *parse.Packet, h hop, rip netip.Addr) {
	vnet := pk.VnetHdr()
	t := xmit.Tunnel{Src: h.src, RIP: rip, PMTUDisc: true}
	if !vnet.IsGSO() {
		e.ipID++
		off, n := t.Encapsulate(pk.Buf, pk.Off, pk.Len, vnet, p, e.ipID)
		pk.Off, pk.Len = off, n
		xmit.SetLink(pk.Frame(), out.mac, h.mac)
		e.send(b, out, pk, p.L3Off, routeMTU(h, out))
		return
	}
	if p.Proto != header.ProtocolTCP {
		e.cnt.Unsendable++ // UDP GSO cannot be split here
		return
	}
	if len(b.spare)-b.nspare < maxSegments {
		e.flush(b)
	}
	bufs := b.spare[b.nspare : b.nspare+maxSegments]
	for i := range b.outs {
		b.outs[i] = bufs[i][packetio.Headroom:]
	}
	n := xmit.SegmentTCP(b.outs, b.lens, pk.Frame(), vnet, p)
	if n == 0 {
		e.cnt.Unsendable++
		return
	}
	b.nspare += n
	e.cnt.Segmented++
	for i := range n {
		seg := *p
		seg.Len = b.lens[i] - p.L3Off
		e.ipID++
		off, l := t.Encapsulate(bufs[i], packetio.Headroom, b.lens[i], nil, &seg, e.ipID)
		xmit.SetLink(bufs[i][off:off+l], out.mac, h.mac)
		e.queue(b, out, packetio.Packet{Buf: bufs[i], Off: off, Len: l})
	}
}
