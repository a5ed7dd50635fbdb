package dataplane

import (
	"net/netip"
	"time"
	"unsafe"

	"github.com/lvslab/lvslab/scheduler"
)

// ftpPort and ftpDataPort are the ports the kernel treats specially (§1.2,
// §3.2.1, §4.1).
const (
	ftpPort     = 21
	ftpDataPort = 20
)

// In processes a packet from a client towards a virtual service
// (ip_vs_in_hook, §3.2): it finds or schedules the connection, counts the
// packet, runs the protocol state machine and re-arms the timer. It does not
// allocate.
func (d *Director) In(p *Packet, now time.Time) Verdict {
	t := now.UnixNano()
	d.advance(t)
	if p.Proto != ProtoTCP && p.Proto != ProtoUDP && p.Proto != ProtoSCTP {
		return Verdict{}
	}
	af := afOf(p.Src)
	caddr, vaddr := addr16(p.Src), addr16(p.Dst)
	i := d.conns.inGet(af, p.Proto, &caddr, p.SrcPort, &vaddr, p.DstPort)

	// Port reuse: a SYN (INIT) on an old entry may start over (§3.2 step 5).
	if i != 0 && d.sys.ConnReuseMode != 0 && d.startsConn(p) {
		c := d.conns.at(i)
		resched := false
		if d.sys.ExpireNodestConn && d.dests[c.dest].Weight == 0 {
			resched = true
		} else if d.newConnExpected(c) {
			resched = true
		}
		if resched {
			if c.nControl == 0 {
				d.expireNow(i, t)
			}
			i = 0
		}
	}
	// Dest gone (in the trash): drop, or expire and reschedule (step 6).
	if i != 0 && !d.dests[d.conns.at(i).dest].Available() {
		if !d.sys.ExpireNodestConn {
			return Verdict{Action: Drop}
		}
		d.expireNow(i, t)
		i = 0
	}
	if i == 0 {
		var act Action
		i, act = d.tryToSchedule(p, af, &caddr, &vaddr, now)
		if i == 0 {
			return Verdict{Action: act}
		}
	}
	return d.inConn(i, p, t)
}

// PrefetchIn starts loading the hash bucket In will look p up in, without
// waiting for it. A caller that holds several packets (a receive batch, a
// recording) calls it for the next packet before handling this one, so the
// bucket, a memory access in a table of millions, arrives meanwhile. It is
// a hint: it changes nothing.
func (d *Director) PrefetchIn(p *Packet) {
	caddr := addr16(p.Src)
	h := connHash(d.conns.seed, p.Proto, &caddr, p.SrcPort)
	prefetch(unsafe.Pointer(&d.conns.buckets[h&uint64(len(d.conns.buckets)-1)]))
}

// InConn is In for a packet of a connection the caller already holds an id
// for (Verdict.Conn), as replay and other event sources do: it skips the
// table lookup. A SYN, an expired id or a dest in the trash take In's full
// path, so the result is always In's.
func (d *Director) InConn(id ConnID, p *Packet, now time.Time) Verdict {
	t := now.UnixNano()
	d.advance(t)
	i, ok := d.live(id)
	if !ok || d.startsConn(p) || !d.dests[d.conns.at(i).dest].Available() {
		return d.In(p, now)
	}
	return d.inConn(i, p, t)
}

// OutConn is Out for a reply of a connection the caller holds an id for.
func (d *Director) OutConn(id ConnID, p *Packet, now time.Time) Verdict {
	t := now.UnixNano()
	d.advance(t)
	i, ok := d.live(id)
	if !ok {
		return d.Out(p, now)
	}
	return d.outConn(i, p, t)
}

// live resolves an id to a table entry that still exists.
func (d *Director) live(id ConnID) (uint32, bool) {
	i, gen := uint32(id), uint32(id>>32)
	if i == 0 || i > d.conns.size {
		return 0, false
	}
	c := d.conns.at(i)
	return i, c.gen == gen && c.af != 0 && c.flags&connHashed != 0
}

// inConn is the rest of In once the connection is known (§3.2 step 8).
func (d *Director) inConn(i uint32, p *Packet, t int64) Verdict {
	c := d.conns.at(i)
	dest := d.dests[c.dest]
	if dest.Available() {
		d.countIn(dest, p.Len)
	}
	d.transition(i, dirInput, p)
	c.inPkts++
	// The packet's own destination is the connection's virtual address.
	v := Verdict{
		Action:  Forward,
		Method:  Method(c.flags & connFwdMask),
		Dest:    netip.AddrPortFrom(dest.Addr, c.dport),
		Virtual: netip.AddrPortFrom(p.Dst, p.DstPort),
	}
	if c.flags&connOnePacket != 0 {
		d.expire(i, t) // one-packet conns never enter the table
		v.Conn = 0
	} else {
		v.Conn = connID(i, c.gen)
		d.arm(i, t)
	}
	return v
}

// Out processes a reply from a real server (or, for DR/TUN, from a VIP)
// towards a client (ip_vs_out_hook, handle_response, §3.11). A packet that
// matches no connection gets Accept: it is not IPVS traffic.
func (d *Director) Out(p *Packet, now time.Time) Verdict {
	t := now.UnixNano()
	d.advance(t)
	if p.Proto != ProtoTCP && p.Proto != ProtoUDP && p.Proto != ProtoSCTP {
		return Verdict{}
	}
	af := afOf(p.Src)
	saddr, daddr := addr16(p.Src), addr16(p.Dst)
	i := d.conns.outGet(af, p.Proto, &saddr, p.SrcPort, &daddr, p.DstPort)
	if i == 0 {
		return Verdict{}
	}
	return d.outConn(i, p, t)
}

// outConn is handle_response once the connection is known.
func (d *Director) outConn(i uint32, p *Packet, t int64) Verdict {
	c := d.conns.at(i)
	dest := d.dests[c.dest]
	if dest.Available() {
		d.countOut(dest, p.Len)
	}
	d.transition(i, dirOutput, p)
	d.arm(i, t)
	return Verdict{
		Action:  Forward,
		Method:  Method(c.flags & connFwdMask),
		Dest:    netip.AddrPortFrom(dest.Addr, c.dport),
		Virtual: netip.AddrPortFrom(addrFrom16(c.af, c.vaddr), c.vport),
		Conn:    connID(i, c.gen),
	}
}

// startsConn is is_new_conn: a TCP SYN or an SCTP INIT.
func (d *Director) startsConn(p *Packet) bool {
	switch p.Proto {
	case ProtoTCP:
		return p.TCPFlags&TCPSyn != 0
	case ProtoSCTP:
		return p.Chunk == SCTPChunkInit
	}
	return false
}

// newConnExpected is is_new_conn_expected: the old entry is finished.
func (d *Director) newConnExpected(c *conn) bool {
	if c.control != 0 {
		return false
	}
	switch c.proto {
	case ProtoTCP:
		return c.state == TCPTimeWait || c.state == TCPClose ||
			d.sys.ConnReuseMode&2 != 0 && c.state == TCPFinWait && c.flags&connNoOutput != 0
	case ProtoSCTP:
		return c.state == SCTPClosed
	}
	return false
}

// tryToSchedule is the protocols' conn_schedule (§3.2 step 7). It returns
// the new conn, or 0 and the action for the packet.
func (d *Director) tryToSchedule(p *Packet, af uint8, caddr, vaddr *[16]byte, now time.Time) (uint32, Action) {
	switch p.Proto {
	case ProtoTCP:
		if p.TCPFlags&TCPRst != 0 || p.TCPFlags&TCPSyn == 0 && !d.sys.SloppyTCP {
			return 0, Accept
		}
	case ProtoSCTP:
		if p.Chunk != SCTPChunkInit && (!d.sys.SloppySCTP || p.Chunk == SCTPChunkAbort) {
			return 0, Accept
		}
	}
	s := d.lookupService(af, p)
	if s == nil {
		return 0, Accept
	}
	if d.todrop() {
		return 0, Drop
	}
	i, act := d.schedule(s, p, af, caddr, vaddr, now)
	if i == 0 && act == Reject {
		act = d.leave(s, p)
	}
	return i, act
}

// lookupService is ip_vs_service_find (§1.2).
func (d *Director) lookupService(af uint8, p *Packet) *Service {
	v6 := af == 6
	fam := 0
	if v6 {
		fam = 1
	}
	if p.Mark != 0 && d.nFWM[fam] > 0 {
		if s := d.svcs[ServiceKey{FWMark: p.Mark, IPv6: v6}]; s != nil {
			return s
		}
	}
	dst := p.Dst.Unmap()
	key := ServiceKey{Proto: p.Proto, Addr: dst, Port: p.DstPort, IPv6: v6}
	if d.lastSvc != nil && key == d.lastKey {
		return d.lastSvc
	}
	if s := d.svcs[key]; s != nil {
		d.lastKey, d.lastSvc = key, s
		return s
	}
	if p.Proto == ProtoTCP && d.nFTP > 0 && (p.DstPort == ftpDataPort || p.DstPort >= 1024) {
		if s := d.svcs[ServiceKey{Proto: ProtoTCP, Addr: dst, Port: ftpPort, IPv6: v6}]; s != nil {
			return s
		}
	}
	if d.nPort0 > 0 {
		if s := d.svcs[ServiceKey{Proto: p.Proto, Addr: dst, IPv6: v6}]; s != nil {
			return s
		}
	}
	return nil
}

// todrop is the drop_packet defense (ip_vs_todrop) in its always-on mode.
func (d *Director) todrop() bool {
	if d.sys.DropPacket != 3 || d.sys.AmDropRate <= 0 {
		return false
	}
	d.dropCount--
	if d.dropCount > 0 {
		return false
	}
	d.dropCount = d.sys.AmDropRate
	return true
}

// leave is ip_vs_leave for a packet no dest was found for (§3.12).
func (d *Director) leave(s *Service, p *Packet) Action {
	if d.sys.CacheBypass && s.cfg.Key.FWMark != 0 {
		return Accept
	}
	if s.cfg.Key.Port == ftpPort && p.DstPort != ftpPort {
		return Accept
	}
	return Reject
}

func flowOf(p *Packet) scheduler.Flow {
	return scheduler.Flow{Proto: p.Proto, Src: p.Src, SrcPort: p.SrcPort, Dst: p.Dst, DstPort: p.DstPort}
}

// schedule is ip_vs_schedule (§3.2.1). Without a conn the action is Drop
// (never scheduled) or Reject (no dest: ip_vs_leave decides).
func (d *Director) schedule(s *Service, p *Packet, af uint8, caddr, vaddr *[16]byte, now time.Time) (uint32, Action) {
	if p.SrcPort == ftpDataPort {
		return 0, Drop
	}
	if s.Flags&scheduler.FlagPersistent != 0 {
		return d.schedulePersist(s, p, af, caddr, vaddr, now)
	}
	if s.cfg.Key.FWMark == 0 && p.DstPort != s.cfg.Key.Port {
		return 0, Reject
	}
	sd := s.Schedule(flowOf(p), now)
	if sd == nil {
		return 0, Reject
	}
	dest := s.dests[sd]
	dport := dest.Port
	if dport == 0 {
		dport = p.DstPort
	}
	i := d.newConn(af, p.Proto, caddr, p.SrcPort, vaddr, p.DstPort, dest, dport, d.opsFlag(s, p), p.Mark)
	d.countConn(dest)
	return i, Forward
}

func (d *Director) opsFlag(s *Service, p *Packet) uint32 {
	if s.Flags&scheduler.FlagOnePacket != 0 && p.Proto == ProtoUDP {
		return connOnePacket
	}
	return 0
}

func (d *Director) countConn(dest *Dest) {
	dest.stats.live.Conns++
	dest.svc.stats.live.Conns++
	d.total.live.Conns++
}

// newConn is ip_vs_conn_new: state NONE, 3 s, bound to dest, hashed unless
// one-packet.
func (d *Director) newConn(af, proto uint8, caddr *[16]byte, cport uint16, vaddr *[16]byte, vport uint16, dest *Dest, dport uint16, flags, mark uint32) uint32 {
	i := d.conns.alloc()
	c := d.conns.at(i)
	c.af, c.proto = af, proto
	c.caddr, c.cport = *caddr, cport
	c.vaddr, c.vport = *vaddr, vport
	c.daddr, c.dport = addr16(dest.Addr), dport
	c.flags = flags
	c.fwmark = mark
	c.timeout = uint32(newConnTimeout / time.Millisecond)
	d.bind(i, dest)
	if flags&connOnePacket == 0 {
		d.conns.hash(i)
	}
	return i
}

// schedulePersist is ip_vs_sched_persist (§4.2).
func (d *Director) schedulePersist(s *Service, p *Packet, af uint8, caddr, vaddr *[16]byte, now time.Time) (uint32, Action) {
	key := s.cfg.Key
	snet := addr16(maskAddr(p.Src, s.cfg.Netmask))
	proto := p.Proto
	tvaddr := *vaddr
	var tvport uint16
	if p.DstPort == key.Port {
		if key.Port != ftpPort {
			tvport = p.DstPort
		}
	} else if key.FWMark != 0 {
		proto = ProtoIP
		tvaddr = markAddr(af, key.FWMark)
	}
	t := now.UnixNano()
	ct := d.conns.templateGet(af, proto, &snet, &tvaddr, tvport)
	var dest *Dest
	if ct == 0 || !d.checkTemplate(ct) {
		sd := s.Schedule(flowOf(p), now)
		if sd == nil {
			return 0, Reject
		}
		dest = s.dests[sd]
		var tdport uint16
		if p.DstPort == key.Port && key.Port != ftpPort {
			tdport = dest.Port
		}
		ct = d.newConn(af, proto, &snet, 0, &tvaddr, tvport, dest, tdport, connTemplate, p.Mark)
		d.conns.at(ct).timeout = uint32(s.cfg.Timeout / time.Millisecond)
	} else {
		dest = d.dests[d.conns.at(ct).dest]
	}
	dport := p.DstPort
	if dport == key.Port && dest.Port != 0 {
		dport = dest.Port
	}
	i := d.newConn(af, p.Proto, caddr, p.SrcPort, vaddr, p.DstPort, dest, dport, d.opsFlag(s, p), p.Mark)
	d.conns.at(i).control = ct
	d.conns.at(ct).nControl++
	d.arm(ct, t)
	d.countConn(dest)
	return i, Forward
}

// checkTemplate is ip_vs_check_template: a template whose dest is gone (or
// quiescent, with expire_quiescent_template) is rehashed so that it never
// matches again, and left to expire.
func (d *Director) checkTemplate(i uint32) bool {
	c := d.conns.at(i)
	dest := d.dests[c.dest]
	if dest.Available() && !(d.sys.ExpireQuiescentTemplate && dest.Weight == 0) {
		return true
	}
	if c.vport != 0xffff {
		d.conns.unhash(i)
		c.dport, c.vport, c.cport = 0xffff, 0xffff, 0
		d.conns.hash(i)
	}
	return false
}

// maskAddr applies the persistence netmask: an AND for IPv4, a prefix
// length for IPv6.
func maskAddr(a netip.Addr, m uint32) netip.Addr {
	a = a.Unmap()
	if a.Is4() {
		b := a.As4()
		v := (uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])) & m
		return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
	}
	if p, err := a.Prefix(int(m)); err == nil {
		return p.Addr()
	}
	return a
}

// markAddr is the fwmark stored as the template's virtual address: an IPv4
// address in network order (mark 1 → 0.0.0.1), or its first 4 bytes for IPv6.
func markAddr(af uint8, mark uint32) [16]byte {
	b := [4]byte{byte(mark >> 24), byte(mark >> 16), byte(mark >> 8), byte(mark)}
	if af == 4 {
		return netip.AddrFrom4(b).As16()
	}
	var a [16]byte
	copy(a[:], b[:])
	return a
}

// transition runs the protocol state machine for one packet (set_tcp_state,
// set_sctp_state, udp_state_transition) and sets the conn's timeout.
func (d *Director) transition(i uint32, dir int, p *Packet) {
	c := d.conns.at(i)
	switch c.proto {
	case ProtoUDP:
		c.timeout = d.udpTimeout
		if dir == dirOutput {
			d.assure(c)
		}
		return
	case ProtoTCP, ProtoSCTP:
	default:
		return
	}
	off := dir
	if c.flags&connNoOutput != 0 {
		if dir == dirOutput {
			c.flags &^= connNoOutput
		} else {
			off = dirInputOnly
		}
	}
	var next uint8
	var active bool
	if c.proto == ProtoTCP {
		next = TCPClose
		if ev := tcpEvent(p.TCPFlags); ev >= 0 {
			table := &tcpStatesNormal
			if d.sys.SecureTCP == 3 {
				table = &tcpStatesSecure
			}
			next = table[off][ev][c.state]
		}
		active = tcpActive(next)
	} else {
		next = sctpTable[off][sctpEvent(p.Chunk)][c.state]
		active = next == SCTPEstablished
	}
	if next != c.state {
		dest := d.dests[c.dest]
		inactive := c.flags&connInactive != 0
		if !inactive && !active {
			dest.SetActive(false)
			c.flags |= connInactive
		} else if inactive && active {
			dest.SetActive(true)
			c.flags &^= connInactive
		}
		if next == TCPEstablished && c.proto == ProtoTCP || next == SCTPEstablished && c.proto == ProtoSCTP {
			d.assure(c)
		}
	}
	c.state = next
	if c.proto == ProtoTCP {
		c.timeout = d.tcpTimeouts[next]
	} else {
		c.timeout = d.sctpTimeouts[next]
	}
}

// assure marks the conn's template ASSURED (ip_vs_control_assure_ct).
func (d *Director) assure(c *conn) {
	if c.control == 0 {
		return
	}
	ct := d.conns.at(c.control)
	if ct.flags&connTemplate != 0 {
		ct.state |= tplAssured
	}
}

// InRelated handles an ICMP error that arrives from the client side and
// quotes a packet sent to the client (VIP:vport → client), as
// ip_vs_in_icmp does: the quoted packet's connection is looked up in
// reverse, the ICMP packet (n bytes) counts as inbound traffic, and the
// verdict says where to relay it. No state changes. Accept means it belongs
// to no connection.
func (d *Director) InRelated(quoted *Packet, n int, now time.Time) Verdict {
	d.advance(now.UnixNano())
	af := afOf(quoted.Dst)
	caddr, vaddr := addr16(quoted.Dst), addr16(quoted.Src)
	i := d.conns.inGet(af, quoted.Proto, &caddr, quoted.DstPort, &vaddr, quoted.SrcPort)
	if i == 0 {
		return Verdict{}
	}
	c := d.conns.at(i)
	dest := d.dests[c.dest]
	if !dest.Available() {
		return Verdict{Action: Drop}
	}
	d.countIn(dest, n)
	return d.relatedVerdict(i, c, dest)
}

// OutRelated handles an ICMP error from a real server quoting a packet it
// received from a client (ip_vs_out_icmp): the quoted packet's connection
// is found as a reply's would be, and the ICMP packet counts as outbound.
func (d *Director) OutRelated(quoted *Packet, n int, now time.Time) Verdict {
	d.advance(now.UnixNano())
	af := afOf(quoted.Dst)
	saddr, daddr := addr16(quoted.Dst), addr16(quoted.Src)
	i := d.conns.outGet(af, quoted.Proto, &saddr, quoted.DstPort, &daddr, quoted.SrcPort)
	if i == 0 {
		return Verdict{}
	}
	c := d.conns.at(i)
	dest := d.dests[c.dest]
	if dest.Available() {
		d.countOut(dest, n)
	}
	return d.relatedVerdict(i, c, dest)
}

func (d *Director) relatedVerdict(i uint32, c *conn, dest *Dest) Verdict {
	return Verdict{
		Action:  Forward,
		Method:  Method(c.flags & connFwdMask),
		Dest:    netip.AddrPortFrom(dest.Addr, c.dport),
		Virtual: netip.AddrPortFrom(addrFrom16(c.af, c.vaddr), c.vport),
		Conn:    connID(i, c.gen),
	}
}

// countIn and countOut add one packet of n bytes to the three levels of
// counters (§9.1): the destination, its service and the total.
func (d *Director) countIn(dest *Dest, n int) {
	dest.stats.addIn(n)
	dest.svc.stats.addIn(n)
	d.total.addIn(n)
}

func (d *Director) countOut(dest *Dest, n int) {
	dest.stats.addOut(n)
	dest.svc.stats.addOut(n)
	d.total.addOut(n)
}
