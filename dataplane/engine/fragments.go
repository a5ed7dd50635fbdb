package engine

import (
	"fmt"
	"net/netip"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lvslab/lvslab/dataplane/defrag"
	"github.com/lvslab/lvslab/dataplane/header"
	"github.com/lvslab/lvslab/dataplane/packetio"
	"github.com/lvslab/lvslab/dataplane/parse"
	"github.com/lvslab/lvslab/dataplane/xmit"
)

// fragments is the engine's side of IPv4 fragmentation: the reassembly
// table (the kernel's nf_defrag_ipv4, which runs before IPVS), and while a
// reassembled datagram is being handled, the largest fragment it came in
// (frag_max_size), to which the output path fragments it again.
type fragments struct {
	table   *defrag.Table // made at the first fragment (its memory is fixed: 4 MB)
	maxSize int
	// route hands an IPv4 packet to the director's own stack to route (a
	// raw socket of its namespace); nil when there is none (tests).
	route func(ip []byte, dst netip.Addr) error
	raw   int    // the raw socket, when route is set
	reply []byte // an ICMP error being built
	// outs and lens are FragmentIPv4's working memory: views into a
	// worker's spare buffers, as many as it has.
	outs [][]byte
	lens []int
}

// icmpFragTime is the code of ICMP time exceeded for a reassembly that
// timed out (ICMP_EXC_FRAGTIME).
const icmpFragTime = 1

// openSender opens the raw socket the engine sends its reassembly
// timeouts' ICMP errors through, in the calling thread's namespace.
func (f *fragments) openSender() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_RAW)
	if err != nil {
		return fmt.Errorf("engine: raw socket for ICMP: %w", err)
	}
	f.raw = fd
	f.route = func(ip []byte, dst netip.Addr) error {
		return unix.Sendto(fd, ip, 0, &unix.SockaddrInet4{Addr: dst.As4()})
	}
	return nil
}

func (f *fragments) close() {
	if f.route != nil {
		unix.Close(f.raw)
		f.route = nil
	}
}

// defragment queues an IPv4 fragment and, when it completes its datagram,
// handles the datagram as a frame that arrived whole: IPVS schedules,
// looks up and counts the datagram, never a fragment. IPv6 fragments are
// not reassembled (dropped, as counted by parse.Fragment).
func (e *Engine) defragment(b *batch, in *iface, pk *packetio.Packet, p *parse.Packet, now time.Time) {
	if !p.IsIPv4() {
		return
	}
	if e.frag.table == nil {
		e.frag.table = defrag.New(defrag.Config{Headroom: packetio.Headroom, Timeout: e.cfg.FragTimeout})
	}
	d, ok := e.frag.table.Add(pk.Frame(), p.L3Off, p.Len, now)
	if !ok {
		return
	}
	whole := packetio.Packet{Buf: d.Buf, Off: d.Off, Len: d.Len, PktType: pk.PktType}
	e.frag.maxSize = d.MaxFragSize
	e.handle(b, in, &whole, now)
	e.frag.maxSize = 0
}

// expireFragments ends the reassembly queues whose time (ipfrag_time) is
// up. A datagram to a virtual address (local to the director) whose first
// fragment came gets ICMP "fragment reassembly time exceeded" from that
// address, quoting the first fragment, as ip_expire answers for a local
// destination; the director's own stack routes it.
func (e *Engine) expireFragments(now time.Time) {
	if e.frag.table == nil {
		return
	}
	e.frag.table.Expire(now, func(first []byte, l3 int) {
		ip := header.IPv4(first[l3:])
		if e.frag.route == nil || !e.vips[ip.Destination()] {
			return
		}
		if hl := ip.HeaderLength(); ip.Protocol() == header.ProtocolICMPv4 && len(ip) > hl && header.ICMPv4IsError(ip[hl]) {
			return // never an error about an error
		}
		if e.frag.reply == nil {
			e.frag.reply = make([]byte, header.EthernetSize+header.ICMPv4ErrorMaxSize)
		}
		p := parse.Packet{L3Off: l3, Len: len(ip)}
		p.Src, p.Dst = ip.Source(), ip.Destination()
		if n := xmit.ICMPError(e.frag.reply, first, &p, p.Dst, header.ICMPv4TimeExceeded, icmpFragTime, 0); n > 0 {
			if e.frag.route(e.frag.reply[header.EthernetSize:n], p.Src) == nil {
				e.cnt.Replies++
			}
		}
	})
}

// send queues a forwarded frame on out. An IPv4 packet that exceeds mtu
// without DF (the transmitter's Fragment verdict), and every reassembled
// datagram, leaves in fragments as ip_fragment cuts them, no larger than
// the largest fragment the datagram arrived in (ip_do_fragment clamps the
// MTU to frag_max_size); the link header is the frame's. A GSO packet is
// segmented by whoever receives it, and goes whole.
func (e *Engine) send(b *batch, out *iface, pk *packetio.Packet, l3, mtu int) {
	frame := pk.Frame()
	if pk.VnetHdr().IsGSO() || header.Ethernet(frame).Type() != header.EtherTypeIPv4 {
		e.queue(b, out, *pk)
		return
	}
	ip := header.IPv4(frame[l3:])
	n := int(ip.TotalLength())
	if e.frag.maxSize == 0 && (n <= mtu || ip.DF()) {
		e.queue(b, out, *pk)
		return
	}
	if e.frag.maxSize > 0 {
		mtu = min(mtu, e.frag.maxSize)
	}
	hl := ip.HeaderLength()
	chunk := (mtu - hl) &^ 7
	if chunk <= 0 {
		e.cnt.Unsendable++
		return
	}
	k := (n - hl + chunk - 1) / chunk
	if len(b.spare)-b.nspare < k {
		e.flush(b)
	}
	if len(b.spare) < k {
		e.cnt.Unsendable++ // more pieces than a worker has buffers
		return
	}
	if len(e.frag.outs) < len(b.spare) {
		e.frag.outs, e.frag.lens = make([][]byte, len(b.spare)), make([]int, len(b.spare))
	}
	bufs := b.spare[b.nspare : b.nspare+k]
	outs := e.frag.outs[:k]
	for i := range outs {
		outs[i] = bufs[i][packetio.Headroom:]
	}
	p := parse.Packet{L3Off: l3, Len: n}
	p.Src = ip.Source()
	if xmit.FragmentIPv4(outs, e.frag.lens[:k], frame, &p, mtu) != k {
		e.cnt.Unsendable++
		return
	}
	b.nspare += k
	e.cnt.Fragmented++
	for i := range k {
		e.queue(b, out, packetio.Packet{Buf: bufs[i], Off: packetio.Headroom, Len: e.frag.lens[i]})
	}
}

// routeMTU is the MTU of the route h, the interface's when the route has
// none.
func routeMTU(h hop, out *iface) int {
	if h.mtu != 0 {
		return h.mtu
	}
	return out.mtu
}
