package replay

import (
	"net/netip"
	"strconv"
	"time"

	"github.com/lvslab/lvslab/dataplane"
)

// The packets of one kipvs connection, as the director sees them. The
// client is Go's net package on Linux; the real-server stub writes one line
// naming itself, and acknowledges the client's FIN before sending its own
// (TCP_QUICKACK). Header sizes are Linux's: a SYN or SYN/ACK carries 20
// bytes of options (MSS, SACK-permitted, timestamps, window scale), every
// other segment 12 (timestamps), RST included.
const (
	tcpSynHdr  = 40
	tcpHdr     = 32
	udpHdr     = 8
	synAckFlag = dataplane.TCPSyn | dataplane.TCPAck
	finAckFlag = dataplane.TCPFin | dataplane.TCPAck
	rstAckFlag = dataplane.TCPRst | dataplane.TCPAck
	pshAckFlag = dataplane.TCPAck | 0x08

	// keepaliveIdle is Go's default TCP keepalive (idle time and interval),
	// which both the kipvs client and the real-server stub use.
	keepaliveIdle = 15 * time.Second
	// synRTO is Linux's initial retransmission timeout for a SYN.
	synRTO = time.Second
	// closeTimeout is how long kipvs's close waits for the server's FIN.
	closeTimeout = 3 * time.Second
)

func ipHdr(a netip.Addr) int {
	if a.Is4() {
		return 20
	}
	return 40
}

// serverPort is the local port the real server sees: NAT rewrites it to the
// destination's port; DR and TUN leave the client's destination port.
func serverPort(v dataplane.Verdict, target netip.AddrPort) uint16 {
	if v.Method == dataplane.MethodMasq {
		return v.Dest.Port()
	}
	return target.Port()
}

// in sends a client packet through the director, marked by the nft rules.
// Once a connection has an id, the director skips the table lookup.
func (r *runner) in(h *held, proto, flags uint8, n int) dataplane.Verdict {
	p := dataplane.Packet{
		Proto: proto, Src: h.client.Addr(), Dst: h.target.Addr(),
		SrcPort: h.client.Port(), DstPort: h.target.Port(), TCPFlags: flags, Len: n,
	}
	p.Mark = r.nft.mark(&p)
	var v dataplane.Verdict
	if h.id != 0 {
		v = r.d.InConn(h.id, &p, r.now)
	} else {
		v = r.d.In(&p, r.now)
	}
	if v.Action == dataplane.Forward {
		h.id = v.Conn
	}
	return v
}

// reply sends a server packet towards the client, if it passes the
// director: always for NAT, for DR/TUN only with "replies director". It
// reports whether the director translated it back (found a connection).
func (r *runner) reply(h *held, proto, flags uint8, n int) bool {
	var src netip.AddrPort
	switch {
	case h.method == dataplane.MethodMasq:
		src = h.rs
	case !r.sc.DirectReplies:
		src = h.target
	default:
		return true
	}
	p := dataplane.Packet{
		Proto: proto, Src: src.Addr(), Dst: h.client.Addr(),
		SrcPort: src.Port(), DstPort: h.client.Port(), TCPFlags: flags, Len: n,
	}
	var v dataplane.Verdict
	if h.id != 0 {
		v = r.d.OutConn(h.id, &p, r.now)
	} else {
		v = r.d.Out(&p, r.now)
	}
	return v.Action == dataplane.Forward
}

// refused maps a failed first packet to the client's error.
func (r *runner) failed(v dataplane.Verdict, cs *ConnSpec) string {
	if v.Action == dataplane.Drop {
		// No answer: the client retransmits until its timeout.
		r.advance(cs.Timeout)
		return "FAIL timeout"
	}
	// Reject is ICMP port unreachable from IPVS; Accept hands the packet
	// to the director's own stack, which owns the VIP and refuses it.
	return "FAIL connection_refused"
}

// tcp runs one TCP connection and prints its decision.
func (r *runner) tcp(client, target netip.AddrPort, cs *ConnSpec) {
	ip := ipHdr(client.Addr())
	h := held{client: client, target: target}
	v := r.in(&h, dataplane.ProtoTCP, dataplane.TCPSyn, ip+tcpSynHdr)
	// A dropped SYN is sent again after 1, 2, 4, ... s (Linux's initial
	// RTO), until the client's timeout.
	waited := time.Duration(0)
	for rto := synRTO; v.Action == dataplane.Drop && waited+rto < cs.Timeout; rto *= 2 {
		r.advance(rto)
		waited += rto
		v = r.in(&h, dataplane.ProtoTCP, dataplane.TCPSyn, ip+tcpSynHdr)
	}
	if v.Action != dataplane.Forward {
		cs := *cs
		cs.Timeout -= waited
		r.decide(client, netip.AddrPort{}, false, r.failed(v, &cs))
		return
	}
	h.method, h.rs = v.Method, v.Dest
	rs := netip.AddrPortFrom(v.Dest.Addr(), serverPort(v, target))
	r.reply(&h, dataplane.ProtoTCP, synAckFlag, ip+tcpSynHdr)
	r.in(&h, dataplane.ProtoTCP, dataplane.TCPAck, ip+tcpHdr)
	r.reply(&h, dataplane.ProtoTCP, pshAckFlag, ip+tcpHdr+r.textLen(rs)+1)
	r.in(&h, dataplane.ProtoTCP, dataplane.TCPAck, ip+tcpHdr)
	switch cs.Mode {
	case "hold":
		h.keepalive = r.now.Add(keepaliveIdle)
		hh := h
		r.held = append(r.held, &hh)
	case "rst":
		r.in(&h, dataplane.ProtoTCP, rstAckFlag, ip+tcpHdr)
	default:
		r.finish(&h, cs.Timeout)
	}
	r.decide(client, rs, false, "")
}

// textLen is the length of the address as the server writes it.
func (r *runner) textLen(a netip.AddrPort) int {
	r.line = a.AppendTo(r.line[:0])
	return len(r.line)
}

// finish is the client's graceful close: FIN, the server's ACK and FIN,
// the client's last ACK. A FIN the director drops (its dest is in the
// trash) is never answered: the client gives up after its timeout.
func (r *runner) finish(h *held, timeout time.Duration) {
	ip := ipHdr(h.client.Addr())
	if r.in(h, dataplane.ProtoTCP, finAckFlag, ip+tcpHdr).Action == dataplane.Drop {
		r.advance(timeout)
		return
	}
	r.reply(h, dataplane.ProtoTCP, dataplane.TCPAck, ip+tcpHdr)
	r.reply(h, dataplane.ProtoTCP, finAckFlag, ip+tcpHdr)
	r.in(h, dataplane.ProtoTCP, dataplane.TCPAck, ip+tcpHdr)
}

// keepalive is one keepalive round of an idle held connection: both ends
// have been idle equally long, so both probe and both answer.
func (r *runner) keepalive(h *held) {
	ip := ipHdr(h.client.Addr())
	r.in(h, dataplane.ProtoTCP, dataplane.TCPAck, ip+tcpHdr)
	r.reply(h, dataplane.ProtoTCP, dataplane.TCPAck, ip+tcpHdr)
	r.reply(h, dataplane.ProtoTCP, dataplane.TCPAck, ip+tcpHdr)
	r.in(h, dataplane.ProtoTCP, dataplane.TCPAck, ip+tcpHdr)
	h.keepalive = h.keepalive.Add(keepaliveIdle)
}

// closeHeld closes the held connections of one client, or all ("*").
func (r *runner) closeHeld(who string) {
	keep := r.held[:0]
	for _, h := range r.held {
		if who == "*" || h.client.Addr().String() == who {
			r.finish(h, closeTimeout)
		} else {
			keep = append(keep, h)
		}
	}
	clear(r.held[len(keep):])
	r.held = keep
}

// udp sends cs.Pkts datagrams from one socket, each answered by the
// server with its address and the request's tag, and prints one decision
// per datagram.
func (r *runner) udp(client, target netip.AddrPort, cs *ConnSpec) {
	ip := ipHdr(client.Addr())
	h := held{client: client, target: target}
	for i := 0; i < cs.Pkts; i++ {
		tag := len("req-") + len(strconv.Itoa(i)) + 1 // "req-N\n"
		v := r.in(&h, dataplane.ProtoUDP, 0, ip+udpHdr+tag)
		if v.Action != dataplane.Forward {
			r.decide(client, netip.AddrPort{}, false, r.failed(v, cs))
			continue
		}
		rs := netip.AddrPortFrom(v.Dest.Addr(), serverPort(v, target))
		h.method, h.rs = v.Method, rs
		translated := r.reply(&h, dataplane.ProtoUDP, 0, ip+udpHdr+r.textLen(rs)+1+tag)
		r.decide(client, rs, !translated, "")
	}
}
