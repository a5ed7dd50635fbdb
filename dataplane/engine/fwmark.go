package engine

// Firewall-mark services (ipvsadm -A -f N) take the packets that rules of
// the director's own firewall marked, as the kernel's IPVS does at
// NF_INET_LOCAL_IN/FORWARD after iptables or nftables set skb->mark. The
// packet taps cannot see a mark: an AF_PACKET socket gets a frame before
// the namespace's prerouting rules run. But only a connection's first
// packet needs the mark (it picks the service; the connection table finds
// the rest by address and port, ip_vs_in's order), so the engine splits:
//
//   - The director's kernel has no drop for a fwmark service's packets (the
//     netdev ingress sets hold address-port keys only), so they reach
//     prerouting, where the operator's rules mark them (iptables' mangle
//     PREROUTING, or nft chains of any priority), and then the input hook
//     (the VIPs are the director's own addresses).
//   - While the table has fwmark services, the engine keeps a table of its
//     own in the namespace: set "marks" holds the services' marks, and an
//     input chain at priority 98, where the kernel's IPVS hooks LOCAL_IN
//     (after the input filter, as there), takes every packet whose meta
//     mark is in the set. A TCP SYN (no ACK, RST or FIN) and
//     every UDP and SCTP packet go to netfilter queue num; the other marked
//     TCP packets are dropped there, as the netdev drop does for address
//     services; other protocols go on (IPVS does not take them). The queue
//     statement is the xtables NFQUEUE target (revision 3) through nft's
//     compat expression: kernels without CONFIG_NFT_QUEUE (as here) have
//     it, and kernels with it too. It carries the bypass flag: while no
//     engine listens (one died without its Close) a new connection's SYN
//     goes on to the director's own stack, as on a kernel director whose
//     fwmark service is gone — a RST, not a black hole.
//   - The queue path (fromQueue) reads the queue (copy mode packet, no
//     F_GSO: the kernel segments GSO packets and completes partial
//     checksums before it queues, so a queued packet is one MTU-sized IP
//     packet with valid checksums), puts an Ethernet header on it from the
//     queue's in interface and hardware address (so a NAT client's MAC is
//     learnt as on the tap path), and hands it to the core with its mark,
//     as In. The verdict follows the core: a packet the engine forwarded,
//     rejected or dropped is dropped in the kernel; one the core does not
//     take (no service for its mark) is accepted and goes on to the
//     director's stack — ip_vs_in's NF_ACCEPT.
//   - The tap path (markedTap) takes the TCP packets after the SYN, GSO
//     super-packets whole: a packet to no address-port service that is
//     not a SYN is forwarded if the core holds its connection (after the
//     NAT replies' lookup, for a packet to an address that is no VIP). SYNs
//     and the other protocols' packets to a VIP it leaves to the queue. The
//     addresses the queue path took connections to are virtual addresses
//     for the sockets' filter and steering (learnMarkVIP) and for ICMP:
//     an error sent to one that quotes a connection is relayed by the tap
//     path, marked or not (ip_vs_in_icmp needs no mark).
//
// Every packet is forwarded once: SYN, UDP and SCTP by the queue path
// only, later TCP packets and ICMP errors by the tap path only (the kernel
// drops the marked TCP; it ignores an ICMP error to a local address no
// socket of its own sent to); the address-port services' packets, dropped
// at netdev ingress, never reach the queue. What differs from the kernel:
// a marked TCP packet that belongs to no connection is dropped, where IPVS
// would let the director's stack answer it with a RST, and with sloppy_tcp
// a marked non-SYN packet does not start a connection.
//
// What it costs: the kernel copies each queued packet to the engine over
// netlink and waits for its verdict, one at a time (a receive, a send and
// a verdict per packet, no batching): a queued UDP datagram costs the
// engine about seven times a tapped one, while bulk TCP through a fwmark
// service runs at the address service's speed, as only its SYN is queued
// (BenchmarkQueuePath, BenchmarkBulkTCPFWMark in fwmark_test.go).

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
	nfqueue "github.com/florianl/go-nfqueue/v2"
	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/lvslab/lvslab/dataplane"
	"github.com/lvslab/lvslab/dataplane/header"
	"github.com/lvslab/lvslab/dataplane/packetio"
	"github.com/lvslab/lvslab/dataplane/parse"
	"github.com/lvslab/lvslab/topo"
)

// Names and numbers of the queue path in the director's namespace.
const (
	// firstQueue is the first netfilter queue number an engine tries; it
	// takes the next one while another engine of the namespace holds it.
	firstQueue = 0x4c10
	queueTries = 16
	// MarkTablePrefix starts the name of an engine's table (family inet),
	// followed by its queue number.
	MarkTablePrefix = "lvslab-fwmark-"
	// MarkSet is the set of the fwmark services' marks in that table.
	MarkSet = "marks"
	// MarkPriority is the queue chain's priority on the input hook: the
	// kernel's IPVS hooks LOCAL_IN at NF_IP_PRI_NAT_SRC - 2, after every
	// prerouting rule (where operators set marks) and the input filter.
	MarkPriority = 98
)

// setMu serialises the nftables batches that create sets.
var setMu sync.Mutex

// markQueue is the engine's netfilter queue and the table that feeds it.
type markQueue struct {
	ns    int // the engine's namespace
	num   uint16
	table string
	nf    *nfqueue.Nfqueue
	stop  context.CancelFunc
	b     *batch // send sockets and buffers, used by the queue's goroutine only
	marks []uint32
}

// syncMarks keeps the queue path equal to the fwmark services: the queue
// opens with the first one, the table's set follows their marks, and the
// table goes with the last one (the queue stays bound until Close). It
// runs outside e.mu, serialised by e.markMu.
func (e *Engine) syncMarks() error {
	e.markMu.Lock()
	defer e.markMu.Unlock()
	e.mu.Lock()
	marks, q := e.marks, e.fwm
	e.mu.Unlock()
	if q == nil {
		if len(marks) == 0 {
			return nil
		}
		var err error
		if q, err = e.openQueue(); err != nil {
			return fmt.Errorf("firewall-mark services get no packets: %w", err)
		}
		e.mu.Lock()
		e.fwm = q
		e.mu.Unlock()
	}
	if slices.Equal(marks, q.marks) {
		return nil
	}
	var err error
	if len(marks) == 0 {
		err = q.deleteTable()
	} else {
		err = q.installTable(marks)
	}
	if err != nil {
		return fmt.Errorf("firewall-mark services: nftables: %w", err)
	}
	q.marks = marks
	return nil
}

// openQueue binds the first free queue number and starts reading it.
func (e *Engine) openQueue() (*markQueue, error) {
	var b *batch
	err := e.inNetns(func() (err error) {
		b, err = e.sendOnlyBatch()
		return err
	})
	if err != nil {
		return nil, err
	}
	q := &markQueue{b: b, ns: int(e.ns)}
	ctx, stop := context.WithCancel(context.Background())
	for i := range uint16(queueTries) {
		q.num = firstQueue + i
		q.nf, err = nfqueue.Open(&nfqueue.Config{
			NetNS: q.ns, NfQueue: q.num, MaxPacketLen: 0xffff, MaxQueueLen: 4096,
			Copymode: nfqueue.NfQnlCopyPacket, AfFamily: unix.AF_INET, WriteTimeout: time.Second,
		})
		if err != nil {
			break
		}
		// Replies that did not fit the socket's buffer are dropped by the
		// kernel; ENOBUFS only tells the reader so.
		q.nf.SetOption(netlink.NoENOBUFS, true)
		err = q.nf.RegisterWithErrorFunc(ctx, func(a nfqueue.Attribute) int {
			e.fromQueue(q, &a)
			return 0
		}, func(err error) int {
			if ctx.Err() != nil {
				return 1
			}
			fmt.Fprintf(os.Stderr, "director: netfilter queue %d: %v\n", q.num, err)
			return 0
		})
		if err == nil {
			q.stop = stop
			q.table = fmt.Sprintf("%s%d", MarkTablePrefix, q.num)
			return q, nil
		}
		q.nf.Close()
		// Another socket holds the queue: EPERM (or EBUSY while it goes).
		if !errors.Is(err, unix.EPERM) && !errors.Is(err, unix.EBUSY) {
			break
		}
	}
	stop()
	closeBatch(b)
	return nil, fmt.Errorf("netfilter queue %d: %w", q.num, err)
}

// sendOnlyBatch is a batch with a socket on every interface that sends and
// never receives (a filter refuses every frame), for the queue path.
func (e *Engine) sendOnlyBatch() (*batch, error) {
	b := newBatch(4, len(e.ifs))
	never := []unix.SockFilter{{Code: unix.BPF_RET | unix.BPF_K, K: 0}}
	for i, ifc := range e.ifs {
		s, err := packetio.Open(ifc.index, len(b.rx), packetio.Config{Vnet: true, QdiscBypass: true})
		if err == nil {
			err = unix.SetsockoptSockFprog(s.Fd(), unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &unix.SockFprog{Len: 1, Filter: &never[0]})
			if err != nil {
				s.Close()
			}
		}
		if err != nil {
			closeBatch(b)
			return nil, fmt.Errorf("interface %s: %w", ifc.name, err)
		}
		b.socks[i] = s
		// Frames that arrived between bind and filter.
		for {
			if _, _, err := unix.Recvfrom(s.Fd(), nil, unix.MSG_DONTWAIT|unix.MSG_TRUNC); err != nil {
				break
			}
		}
	}
	return b, nil
}

func closeBatch(b *batch) {
	for _, s := range b.socks {
		if s != nil {
			s.Close()
		}
	}
}

// close removes the table, then stops reading (the kernel drops what is
// still queued when the queue is unbound).
func (q *markQueue) close() error {
	var err error
	if len(q.marks) > 0 {
		err = q.deleteTable()
	}
	q.stop()
	q.nf.Close()
	closeBatch(q.b)
	return err
}

// installTable (re)creates the engine's table with marks in its set, in
// one transaction: the old table, if any, goes in the same batch.
func (q *markQueue) installTable(marks []uint32) error {
	c, err := nftables.New(nftables.WithNetNSFd(q.ns))
	if err != nil {
		return err
	}
	t := &nftables.Table{Family: nftables.TableFamilyINet, Name: q.table}
	if len(q.marks) > 0 {
		c.DelTable(t)
	}
	c.AddTable(t)
	set := &nftables.Set{Table: t, Name: MarkSet, KeyType: nftables.TypeMark, KeyByteOrder: binaryutil.NativeEndian}
	els := make([]nftables.SetElement, len(marks))
	for i, m := range marks {
		els[i] = nftables.SetElement{Key: binary.NativeEndian.AppendUint32(nil, m)}
	}
	// AddSet numbers sets from an unsynchronised package counter.
	setMu.Lock()
	err = c.AddSet(set, els)
	setMu.Unlock()
	if err != nil {
		return err
	}
	prio := nftables.ChainPriority(MarkPriority)
	ch := c.AddChain(&nftables.Chain{Name: "queue", Table: t, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookInput, Priority: &prio})
	marked := func(more ...expr.Any) []expr.Any {
		return append([]expr.Any{
			&expr.Meta{Key: expr.MetaKeyMARK, Register: 1},
			&expr.Lookup{SourceRegister: 1, SetName: set.Name, SetID: set.ID},
		}, more...)
	}
	isTCP := []expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.IPPROTO_TCP}},
	}
	queue := topo.NFQueueTarget(q.num)
	// tcp flags & (fin|syn|rst|ack) == syn: queued.
	const flags = header.TCPFlagFIN | header.TCPFlagSYN | header.TCPFlagRST | header.TCPFlagACK
	c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: marked(append(slices.Clone(isTCP),
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 13, Len: 1},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 1, Mask: []byte{flags}, Xor: []byte{0}},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{header.TCPFlagSYN}},
		queue,
	)...)})
	// The rest of TCP: the tap path's.
	c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: marked(append(slices.Clone(isTCP),
		&expr.Verdict{Kind: expr.VerdictDrop})...)})
	// UDP and SCTP: every packet may start a connection. Other protocols
	// are not IPVS's: the related ICMP errors come by the tap path, the
	// rest goes on to the director's stack.
	for _, proto := range []byte{unix.IPPROTO_UDP, unix.IPPROTO_SCTP} {
		c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: marked(
			&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{proto}},
			queue,
		)})
	}
	return c.Flush()
}

func (q *markQueue) deleteTable() error {
	c, err := nftables.New(nftables.WithNetNSFd(q.ns))
	if err != nil {
		return err
	}
	c.DelTable(&nftables.Table{Family: nftables.TableFamilyINet, Name: q.table})
	return c.Flush()
}

// fromQueue decides one queued packet and gives the kernel its verdict.
func (e *Engine) fromQueue(q *markQueue, a *nfqueue.Attribute) {
	if a.PacketID == nil {
		return
	}
	verdict := nfqueue.NfAccept
	if a.Payload != nil && a.InDev != nil && a.Mark != nil {
		var hw []byte
		if a.HwAddr != nil {
			hw = *a.HwAddr
		}
		if e.queued(q.b, *a.Payload, int(*a.InDev), hw, *a.Mark, time.Now()) {
			verdict = nfqueue.NfDrop
		}
		e.flush(q.b)
	}
	if err := q.nf.SetVerdict(*a.PacketID, verdict); err != nil {
		e.mu.Lock()
		e.cnt.QueueErrs++
		e.mu.Unlock()
	}
}

// queued is the queue path's handle: pkt is an IP packet that arrived on
// the interface with index ifindex from link address hw, with firewall
// mark mark. It reports whether the engine took the packet (forwarded,
// rejected or dropped it); if not, the kernel goes on with it. What it
// forwards waits in b's send queues.
func (e *Engine) queued(b *batch, pkt []byte, ifindex int, hw []byte, mark uint32, now time.Time) bool {
	in := e.ifaceOf(ifindex)
	pk := &b.rx[0]
	if in == nil || len(pkt) == 0 || header.EthernetSize+len(pkt) > len(pk.Buf)-packetio.Headroom {
		return false
	}
	pk.Off, pk.Len = packetio.Headroom, header.EthernetSize+len(pkt)
	clear(pk.Vnet[:])
	frame := pk.Frame()
	eth := header.Ethernet(frame)
	eth.SetDestination(in.mac)
	var src header.MAC
	copy(src[:], hw)
	eth.SetSource(src)
	eth.SetType(header.EtherTypeIPv4)
	if pkt[0]>>4 == 6 {
		eth.SetType(header.EtherTypeIPv6)
	}
	copy(frame[header.EthernetSize:], pkt)
	var p parse.Packet
	if parse.Frame(frame, nil, &p) != parse.OK {
		return false
	}
	took := false
	e.mu.Lock()
	e.cnt.Queued++
	if p.Kind == parse.KindTransport {
		vip := p.Dst // before a NAT rewrite
		act := e.inbound(b, in, pk, &p, mark, now)
		took = act != dataplane.Accept
		if act == dataplane.Forward {
			e.learnMarkVIP(vip)
		}
	}
	e.mu.Unlock()
	return took
}

// learnMarkVIP records vip as an address a fwmark service took a
// connection to, and has the sockets' filter pass its packets: the rest of
// the connection comes by the tap path. It runs under e.mu, before the
// forwarded packet is sent, so the filter passes its answer's successor.
// The addresses stay (their connections outlive the service), up to the
// filter map's size.
func (e *Engine) learnMarkVIP(vip netip.Addr) {
	if e.markVIPs[vip] {
		return
	}
	if e.markVIPs == nil {
		e.markVIPs = map[netip.Addr]bool{}
	}
	e.markVIPs[vip] = true
	if e.cls != nil && !e.vips[vip] {
		if err := e.cls.SetVIPs([]netip.Addr{vip}, nil); err != nil {
			fmt.Fprintf(os.Stderr, "director: fwmark VIP %s: %v\n", vip, err)
		}
	}
}

// markedTap is the tap path's part of the fwmark services' traffic, with
// fwmark services about (see the top of this file). It reports whether it
// dealt with the packet (forwarded it, or left it to the queue path or the
// kernel); if not, handle goes on as usual. toVIP says whether p is to the
// address of an address-port service.
func (e *Engine) markedTap(b *batch, in *iface, pk *packetio.Packet, p *parse.Packet, toVIP bool, now time.Time) bool {
	dst := p.Dst.Unmap()
	if toVIP && (e.keys[dataplane.ServiceKey{Proto: p.Proto, Addr: dst, Port: p.DstPort}] ||
		e.keys[dataplane.ServiceKey{Proto: p.Proto, Addr: dst}]) {
		return false // an address-port service's: the kernel dropped it at netdev ingress
	}
	const flags = header.TCPFlagFIN | header.TCPFlagSYN | header.TCPFlagRST | header.TCPFlagACK
	if p.Proto != header.ProtocolTCP || p.TCPFlags&flags == header.TCPFlagSYN {
		// The queue path's if marked, else the kernel's; a packet to an
		// address that is no VIP may be a NAT reply.
		return toVIP
	}
	if !toVIP && e.outbound(b, pk, p, now) {
		return true
	}
	cp := corePacket(p)
	v := e.core.In(&cp, now)
	if v.Action == dataplane.Forward {
		if v.Method == dataplane.MethodMasq {
			e.hops.learn(p.Src, header.Ethernet(pk.Frame()).Source(), in.index)
		}
		e.transmit(b, in, pk, p, v, now)
	}
	return true
}

// closeMarks ends the queue path (Close).
func (e *Engine) closeMarks() error {
	e.markMu.Lock()
	defer e.markMu.Unlock()
	defer e.ns.Close()
	if e.fwm == nil {
		return nil
	}
	return e.fwm.close()
}

// inNetns runs fn on a thread in the engine's namespace: what it opens
// stays there.
func (e *Engine) inNetns(fn func() error) error {
	n, err := ns.GetNS(fmt.Sprintf("/proc/self/fd/%d", int(e.ns)))
	if err != nil {
		return err
	}
	defer n.Close()
	return n.Do(func(ns.NetNS) error { return fn() })
}
