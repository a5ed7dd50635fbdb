package dataplane

import (
	"net/netip"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lvslab/lvslab/scheduler"
)

var t0 = time.Unix(1_000_000_000, 0)

var (
	vip   = netip.MustParseAddr("10.0.0.100")
	rs1   = netip.MustParseAddr("10.1.0.1")
	rs2   = netip.MustParseAddr("10.1.0.2")
	rs3   = netip.MustParseAddr("10.1.0.3")
	cl1   = netip.MustParseAddr("10.2.0.1")
	tcp80 = ServiceKey{Proto: ProtoTCP, Addr: vip, Port: 80}
)

// lab is a director with a virtual clock and a client that talks to it the
// way a Linux client and server do.
type lab struct {
	t   *testing.T
	d   *Director
	now time.Time
}

func newLab(t *testing.T, profile scheduler.Profile) *lab {
	return &lab{t: t, d: New(profile, t0), now: t0}
}

func (l *lab) sleep(d time.Duration) {
	l.now = l.now.Add(d)
	l.d.Advance(l.now)
}

func (l *lab) service(key ServiceKey, sched string, flags uint32, timeout time.Duration, dests ...DestConfig) {
	l.t.Helper()
	require.Zero(l.t, l.d.AddService(ServiceConfig{Key: key, Scheduler: sched, Flags: flags, Timeout: timeout}, l.now))
	for _, dc := range dests {
		require.Zero(l.t, l.d.AddDest(key, dc, l.now))
	}
}

func nat(a netip.Addr) DestConfig {
	return DestConfig{Addr: a, Port: 80, Method: MethodMasq, Weight: 1}
}
func dr(a netip.Addr) DestConfig {
	return DestConfig{Addr: a, Port: 80, Method: MethodRoute, Weight: 1}
}
func udpNAT(a netip.Addr) DestConfig {
	return DestConfig{Addr: a, Port: 53, Method: MethodMasq, Weight: 1}
}

// tcpConn is one client connection to vip:80 from client:sport.
type tcpConn struct {
	l       *lab
	client  netip.AddrPort
	target  netip.AddrPort
	v       Verdict
	replies bool // replies pass the director
}

func (l *lab) dial(client netip.Addr, sport uint16) *tcpConn {
	return l.dialReplies(client, sport, false)
}

// dialReplies opens a connection; DR/TUN replies pass the director when
// viaDirector is set (NAT replies always do).
func (l *lab) dialReplies(client netip.Addr, sport uint16, viaDirector bool) *tcpConn {
	c := &tcpConn{l: l, client: netip.AddrPortFrom(client, sport), target: netip.AddrPortFrom(vip, 80)}
	c.v = c.in(TCPSyn, 60)
	if c.v.Action == Forward {
		c.replies = c.v.Method == MethodMasq || viaDirector
		c.out(TCPSyn|TCPAck, 60)
		c.in(TCPAck, 52)
		c.out(TCPAck, 64)
		c.in(TCPAck, 52)
	}
	return c
}

func (c *tcpConn) in(flags uint8, n int) Verdict {
	p := Packet{Proto: ProtoTCP, Src: c.client.Addr(), SrcPort: c.client.Port(), Dst: c.target.Addr(), DstPort: c.target.Port(), TCPFlags: flags, Len: n}
	return c.l.d.In(&p, c.l.now)
}

func (c *tcpConn) out(flags uint8, n int) {
	if !c.replies {
		return
	}
	src := c.v.Dest
	if c.v.Method != MethodMasq {
		src = c.target
	}
	p := Packet{Proto: ProtoTCP, Src: src.Addr(), SrcPort: src.Port(), Dst: c.client.Addr(), DstPort: c.client.Port(), TCPFlags: flags, Len: n}
	c.l.d.Out(&p, c.l.now)
}

func (c *tcpConn) close() {
	c.in(TCPFin|TCPAck, 52)
	c.out(TCPAck, 52)
	c.out(TCPFin|TCPAck, 52)
	c.in(TCPAck, 52)
}

func (c *tcpConn) reset() { c.in(TCPRst|TCPAck, 52) }

func (l *lab) udp(client netip.AddrPort, target netip.AddrPort, reply bool) Verdict {
	p := Packet{Proto: ProtoUDP, Src: client.Addr(), SrcPort: client.Port(), Dst: target.Addr(), DstPort: target.Port(), Len: 34}
	v := l.d.In(&p, l.now)
	if reply && v.Action == Forward {
		r := Packet{Proto: ProtoUDP, Src: v.Dest.Addr(), SrcPort: v.Dest.Port(), Dst: client.Addr(), DstPort: client.Port(), Len: 46}
		l.d.Out(&r, l.now)
	}
	return v
}

// states maps each non-template connection's client to its state.
func (l *lab) states() map[netip.AddrPort]string {
	m := map[netip.AddrPort]string{}
	for _, c := range l.d.Conns(l.now) {
		if !c.Template {
			m[c.Client] = c.State
		}
	}
	return m
}

func (l *lab) dest(key ServiceKey, a netip.Addr) DestInfo {
	l.t.Helper()
	si, ok := l.d.Service(key, l.now)
	require.True(l.t, ok)
	for _, di := range si.Dests {
		if di.Config.Addr == a {
			return di
		}
	}
	l.t.Fatalf("no dest %v", a)
	return DestInfo{}
}

func TestTCPEndStatesAndCounters(t *testing.T) {
	tests := []struct {
		name          string
		dest          DestConfig
		replies       bool
		end           func(*tcpConn)
		state         string
		active, inact int32
		lifetime      time.Duration
	}{
		{"NAT closed by the client ends in TIME_WAIT", nat(rs1), true, (*tcpConn).close, "TIME_WAIT", 0, 1, 120 * time.Second},
		{"DR without replies ends in FIN_WAIT", dr(rs1), false, (*tcpConn).close, "FIN_WAIT", 0, 1, 120 * time.Second},
		{"DR with replies through the director ends in TIME_WAIT", dr(rs1), true, (*tcpConn).close, "TIME_WAIT", 0, 1, 120 * time.Second},
		{"RST leaves CLOSE for 10 s", nat(rs1), true, (*tcpConn).reset, "CLOSE", 0, 1, 10 * time.Second},
		{"an open connection is ESTABLISHED and active", nat(rs1), true, func(*tcpConn) {}, "ESTABLISHED", 1, 0, 900 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := newLab(t, scheduler.ProfileCurrent)
			l.service(tcp80, "rr", 0, 0, tt.dest)
			c := l.dialReplies(cl1, 10000, tt.replies)
			require.Equal(t, Forward, c.v.Action)
			tt.end(c)
			assert.Equal(t, tt.state, l.states()[c.client])
			di := l.dest(tcp80, rs1)
			assert.Equal(t, tt.active, di.ActiveConns)
			assert.Equal(t, tt.inact, di.InactConns)

			l.sleep(tt.lifetime - time.Millisecond)
			assert.Len(t, l.states(), 1, "still there just before its timeout")
			l.sleep(2 * time.Millisecond)
			assert.Empty(t, l.states(), "expired after its timeout")
			di = l.dest(tcp80, rs1)
			assert.Zero(t, di.ActiveConns+di.InactConns)
		})
	}
}

func TestInboundCountersAndStatsFoldEveryTwoSeconds(t *testing.T) {
	l := newLab(t, scheduler.ProfileCurrent)
	l.service(tcp80, "rr", 0, 0, nat(rs1))
	l.dial(cl1, 10000).close()
	assert.Zero(t, l.dest(tcp80, rs1).Stats, "nothing folded before the estimator runs")
	l.sleep(2 * time.Second)
	assert.Equal(t, Counters{Conns: 1, InPkts: 5, OutPkts: 4, InBytes: 268, OutBytes: 228}, l.dest(tcp80, rs1).Stats)
	tot, _ := l.d.Total(l.now)
	assert.Equal(t, uint64(1), tot.Conns)
}

func TestSYNOnAFinishedEntryIsScheduledAnew(t *testing.T) {
	l := newLab(t, scheduler.ProfileCurrent)
	l.service(tcp80, "rr", 0, 0, nat(rs1), nat(rs2), nat(rs3))
	c := l.dial(cl1, 10000)
	first := c.v.Dest.Addr()
	c.reset()
	again := l.dial(cl1, 10000)
	assert.NotEqual(t, first, again.v.Dest.Addr(), "rr moves on")
	l.sleep(time.Millisecond)
	assert.Equal(t, map[netip.AddrPort]string{c.client: "ESTABLISHED"}, l.states(), "the CLOSE entry left at once")
	assert.Zero(t, l.dest(tcp80, first).InactConns)

	l.d.SetSysctl("conn_reuse_mode", "0")
	again.reset()
	third := l.dial(cl1, 10000)
	assert.Equal(t, again.v.Dest, third.v.Dest, "conn_reuse_mode 0 reuses the old entry")
}

func TestPersistenceTemplateIsReArmedWith60sWhileItControls(t *testing.T) {
	l := newLab(t, scheduler.ProfileCurrent)
	l.service(tcp80, "rr", scheduler.FlagPersistent, 3*time.Second, nat(rs1), nat(rs2), nat(rs3))
	held := l.dial(cl1, 10000)
	assert.Equal(t, int32(1), l.dest(tcp80, held.v.Dest.Addr()).PersistConns)
	l.sleep(5 * time.Second)
	c := l.dial(cl1, 10001)
	assert.Equal(t, held.v.Dest, c.v.Dest, "the template outlived -p 3 while it controlled a connection")
	c.close()
	held.close()
	var tpl ConnInfo
	for _, ci := range l.d.Conns(l.now) {
		if ci.Template {
			tpl = ci
		}
	}
	assert.Equal(t, "ASSURED", tpl.State)
	assert.Equal(t, netip.AddrPortFrom(cl1, 0), tpl.Client)
	// Both conns sit in TIME_WAIT for 120 s; then the template's 60 s
	// re-arms run out.
	l.sleep(120 * time.Second)
	assert.Empty(t, l.states())
	l.sleep(60 * time.Second)
	assert.Empty(t, l.d.Conns(l.now))
	assert.Zero(t, l.dest(tcp80, held.v.Dest.Addr()).PersistConns)
}

func TestQuiescedDestKeepsPersistentClientsUnlessExpireQuiescentTemplate(t *testing.T) {
	for _, expire := range []bool{false, true} {
		l := newLab(t, scheduler.ProfileCurrent)
		l.service(tcp80, "rr", scheduler.FlagPersistent, 300*time.Second, nat(rs1), nat(rs2))
		if expire {
			require.NoError(t, l.d.SetSysctl("net.ipv4.vs.expire_quiescent_template", "1"))
		}
		first := l.dial(cl1, 10000)
		first.close()
		q := nat(first.v.Dest.Addr())
		q.Weight = 0
		require.Zero(t, l.d.EditDest(tcp80, q, l.now))
		next := l.dial(cl1, 10001)
		assert.Equal(t, !expire, first.v.Dest == next.v.Dest, "expire_quiescent_template=%v", expire)
	}
}

func TestDeletedDestComesBackFromTheTrash(t *testing.T) {
	l := newLab(t, scheduler.ProfileCurrent)
	l.service(tcp80, "rr", 0, 0, nat(rs1))
	l.dial(cl1, 10000) // held: ESTABLISHED
	l.sleep(2 * time.Second)
	require.Zero(t, l.d.DelDest(tcp80, rs1, 80, l.now))
	c := l.dial(cl1, 10000)
	assert.Equal(t, Drop, c.v.Action, "packets of a trashed dest's conns are dropped")

	require.Zero(t, l.d.AddDest(tcp80, nat(rs1), l.now))
	di := l.dest(tcp80, rs1)
	assert.Equal(t, int32(1), di.ActiveConns, "the same object, counters and all")
	assert.Equal(t, uint64(1), di.Stats.Conns, "same service object: stats kept")

	// Deleting the service and creating it again: the trash matches by
	// service identity, so the counters come back but the stats restart.
	require.Zero(t, l.d.DelService(tcp80, l.now))
	l.service(tcp80, "rr", 0, 0, nat(rs1))
	di = l.dest(tcp80, rs1)
	assert.Equal(t, int32(1), di.ActiveConns)
	assert.Zero(t, di.Stats.Conns)
}

func TestTrashFreesIdleDestsAfter120s(t *testing.T) {
	l := newLab(t, scheduler.ProfileCurrent)
	l.service(tcp80, "rr", 0, 0, nat(rs1))
	l.dial(cl1, 10000).reset() // CLOSE, 10 s
	l.sleep(2 * time.Second)
	require.Zero(t, l.d.DelDest(tcp80, rs1, 80, l.now))
	// Sweeps at +60 (idle since), +120, +180 (freed: 120 s idle).
	l.sleep(179 * time.Second)
	require.Zero(t, l.d.AddDest(tcp80, nat(rs1), l.now))
	assert.Equal(t, uint64(1), l.dest(tcp80, rs1).Stats.Conns, "still in the trash")
	require.Zero(t, l.d.DelDest(tcp80, rs1, 80, l.now))
	l.sleep(400 * time.Second)
	require.Zero(t, l.d.AddDest(tcp80, nat(rs1), l.now))
	assert.Zero(t, l.dest(tcp80, rs1).Stats.Conns, "freed: a new dest")
}

func TestTrashKeepsDestsAnLBLCCacheStillHolds(t *testing.T) {
	l := newLab(t, scheduler.ProfileCurrent)
	l.service(tcp80, "lblc", 0, 0, nat(rs1))
	l.dial(cl1, 10000).reset() // caches vip → rs1; the conn is gone after 10 s
	l.sleep(2 * time.Second)
	require.Zero(t, l.d.DelDest(tcp80, rs1, 80, l.now))
	// No conn references rs1 after 10 s, but the cache entry does (24 h), so
	// the sweeps that would free an idle dest after 120 s keep it.
	l.sleep(400 * time.Second)
	require.Zero(t, l.d.AddDest(tcp80, nat(rs1), l.now))
	assert.Equal(t, uint64(1), l.dest(tcp80, rs1).Stats.Conns, "the same dest came back")
}

func TestExpireNodestConnRemovesConnsOfDeletedDests(t *testing.T) {
	l := newLab(t, scheduler.ProfileCurrent)
	require.NoError(t, l.d.SetSysctl("expire_nodest_conn", "1"))
	l.service(tcp80, "rr", scheduler.FlagPersistent, 300*time.Second, nat(rs1), nat(rs2))
	c := l.dial(cl1, 10000)
	require.Zero(t, l.d.DelDest(tcp80, c.v.Dest.Addr(), 80, l.now))
	l.sleep(time.Millisecond)
	assert.Empty(t, l.d.Conns(l.now), "the conn and its template went")
}

func TestOnePacketSchedulingSchedulesEveryDatagram(t *testing.T) {
	l := newLab(t, scheduler.ProfileCurrent)
	key := ServiceKey{Proto: ProtoUDP, Addr: vip, Port: 53}
	l.service(key, "rr", scheduler.FlagOnePacket, 0, udpNAT(rs1), udpNAT(rs2))
	client := netip.AddrPortFrom(cl1, 10000)
	var got []netip.Addr
	for range 4 {
		v := l.udp(client, netip.AddrPortFrom(vip, 53), true)
		assert.Zero(t, v.Conn)
		got = append(got, v.Dest.Addr())
	}
	assert.Equal(t, []netip.Addr{rs2, rs1, rs2, rs1}, got)
	assert.Empty(t, l.d.Conns(l.now))
	l.sleep(2 * time.Second)
	di := l.dest(key, rs1)
	assert.Equal(t, Counters{Conns: 2, InPkts: 2, InBytes: 68}, di.Stats, "replies are not matched")
	assert.Zero(t, di.InactConns)
}

func TestServiceLookupOrder(t *testing.T) {
	l := newLab(t, scheduler.ProfileCurrent)
	fwm := ServiceKey{FWMark: 7}
	port0 := ServiceKey{Proto: ProtoTCP, Addr: vip}
	ftp := ServiceKey{Proto: ProtoTCP, Addr: vip, Port: 21}
	l.service(fwm, "rr", 0, 0, nat(rs1))
	l.service(tcp80, "rr", 0, 0, nat(rs2))
	l.service(ftp, "rr", scheduler.FlagPersistent, time.Minute, DestConfig{Addr: rs3, Method: MethodRoute, Weight: 1})
	l.service(port0, "rr", scheduler.FlagPersistent, time.Minute, DestConfig{Addr: rs1, Method: MethodMasq, Weight: 1})
	tests := []struct {
		name string
		port uint16
		mark uint32
		want netip.Addr
	}{
		{"a marked packet goes to the fwmark service", 80, 7, rs1},
		{"the exact service next", 80, 0, rs2},
		{"an unprivileged port of a port-21 VIP goes to the FTP service", 5000, 0, rs3},
		{"a privileged port falls to the port-0 service", 443, 0, rs1},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// One client each: the FTP and port-0 templates share a key.
			client := netip.AddrFrom4([4]byte{10, 2, 1, byte(i)})
			p := Packet{Proto: ProtoTCP, Src: client, SrcPort: 20000, Dst: vip, DstPort: tt.port, TCPFlags: TCPSyn, Len: 60, Mark: tt.mark}
			v := l.d.In(&p, l.now)
			require.Equal(t, Forward, v.Action)
			assert.Equal(t, tt.want, v.Dest.Addr())
		})
	}
	p := Packet{Proto: ProtoTCP, Src: cl1, SrcPort: 30000, Dst: rs1, DstPort: 80, TCPFlags: TCPSyn, Len: 60}
	assert.Equal(t, Accept, l.d.In(&p, l.now).Action, "no service: not IPVS traffic")
}

// TestServiceLookupFollowsDeletesAndReAdds checks that the remembered last
// service never outlives the service: after a delete the VIP is no IPVS
// traffic, and a service added again with the same key is the one found.
func TestServiceLookupFollowsDeletesAndReAdds(t *testing.T) {
	l := newLab(t, scheduler.ProfileCurrent)
	syn := func(sport uint16) Verdict {
		p := Packet{Proto: ProtoTCP, Src: cl1, SrcPort: sport, Dst: vip, DstPort: 80, TCPFlags: TCPSyn, Len: 60}
		return l.d.In(&p, l.now)
	}
	l.service(tcp80, "rr", 0, 0, nat(rs1))
	require.Equal(t, rs1, syn(20000).Dest.Addr())
	require.Zero(t, l.d.DelService(tcp80, l.now))
	assert.Equal(t, Accept, syn(20001).Action, "the service is gone")
	l.service(tcp80, "rr", 0, 0, nat(rs2))
	assert.Equal(t, rs2, syn(20002).Dest.Addr(), "the service added again")
}

func TestSCTPHandshakeIsActiveOnlyWhenEstablished(t *testing.T) {
	l := newLab(t, scheduler.ProfileCurrent)
	key := ServiceKey{Proto: ProtoSCTP, Addr: vip, Port: 80}
	l.service(key, "rr", 0, 0, nat(rs1))
	in := func(chunk uint8) Verdict {
		p := Packet{Proto: ProtoSCTP, Src: cl1, SrcPort: 5000, Dst: vip, DstPort: 80, Chunk: chunk, Len: 100}
		return l.d.In(&p, l.now)
	}
	out := func(chunk uint8) {
		p := Packet{Proto: ProtoSCTP, Src: rs1, SrcPort: 80, Dst: cl1, DstPort: 5000, Chunk: chunk, Len: 100}
		l.d.Out(&p, l.now)
	}
	assert.Equal(t, Accept, in(SCTPChunkData).Action, "only INIT schedules")
	require.Equal(t, Forward, in(SCTPChunkInit).Action)
	out(SCTPChunkInitAck)
	in(SCTPChunkCookieEcho)
	assert.Zero(t, l.dest(key, rs1).ActiveConns)
	out(SCTPChunkCookieAck)
	assert.Equal(t, "ESTABLISHED", l.d.Conns(l.now)[0].State)
	assert.Equal(t, int32(1), l.dest(key, rs1).ActiveConns)
}

func TestEstimatorRatesFollowTheKernelsMovingAverage(t *testing.T) {
	// spec §9.2: a steady 100 new connections/s shows cps 25, 44, 58, ...
	l := newLab(t, scheduler.ProfileCurrent)
	key := ServiceKey{Proto: ProtoUDP, Addr: vip, Port: 53}
	l.service(key, "rr", 0, 0, udpNAT(rs1))
	want := []uint64{25, 44, 58, 68, 76, 82, 87, 90, 92, 94, 96, 97}
	var got []uint64
	port := uint16(1024)
	for range want {
		for range 200 {
			l.udp(netip.AddrPortFrom(cl1, port), netip.AddrPortFrom(vip, 53), false)
			port++
			l.sleep(10 * time.Millisecond)
		}
		si, _ := l.d.Service(key, l.now)
		got = append(got, si.Rates.CPS)
	}
	assert.Equal(t, want, got)
}

func TestZeroTakesTheFoldedCounters(t *testing.T) {
	l := newLab(t, scheduler.ProfileCurrent)
	l.service(tcp80, "rr", 0, 0, nat(rs1))
	l.dial(cl1, 10000).close()
	l.sleep(2 * time.Second)
	l.dial(cl1, 10001).close() // not folded yet
	require.Zero(t, l.d.Zero(nil, l.now))
	assert.Zero(t, l.dest(tcp80, rs1).Stats)
	l.sleep(2 * time.Second)
	assert.Equal(t, uint64(1), l.dest(tcp80, rs1).Stats.Conns, "the last 2 s survive -Z")
}

func TestControlErrorsAreTheKernels(t *testing.T) {
	l := newLab(t, scheduler.ProfileCurrent)
	now := l.now
	assert.Equal(t, syscall.ESRCH, l.d.AddDest(tcp80, nat(rs1), now))
	require.Zero(t, l.d.AddService(ServiceConfig{Key: tcp80, Scheduler: "wlc"}, now))
	assert.Equal(t, syscall.EEXIST, l.d.AddService(ServiceConfig{Key: tcp80, Scheduler: "wlc"}, now))
	assert.Equal(t, syscall.ENOENT, l.d.AddService(ServiceConfig{Key: ServiceKey{Proto: ProtoTCP, Addr: vip, Port: 81}, Scheduler: "nosuch"}, now))
	require.Zero(t, l.d.AddDest(tcp80, nat(rs1), now))
	assert.Equal(t, syscall.EEXIST, l.d.AddDest(tcp80, nat(rs1), now))
	assert.Equal(t, syscall.ENOENT, l.d.EditDest(tcp80, nat(rs2), now))
	assert.Equal(t, syscall.ENOENT, l.d.DelDest(tcp80, rs2, 80, now))
	bad := nat(rs2)
	bad.LThreshold = 5
	assert.Equal(t, syscall.ERANGE, l.d.AddDest(tcp80, bad, now))
	assert.Equal(t, syscall.ESRCH, l.d.DelService(ServiceKey{FWMark: 9}, now))
	assert.Equal(t, syscall.EINVAL, l.d.SetTimeouts(Timeouts{TCP: -time.Second}))
	require.Zero(t, l.d.SetTimeouts(Timeouts{TCPFin: 60 * time.Second}))
	assert.Equal(t, Timeouts{900 * time.Second, 60 * time.Second, 300 * time.Second}, l.d.Timeouts())
	assert.ErrorIs(t, l.d.SetSysctl("net.ipv4.vs.nosuch", "1"), ErrNoSysctl)
	assert.ErrorIs(t, l.d.SetSysctl("secure_tcp", "4"), syscall.EINVAL)
}

func TestSecureTCPUsesTheDefenseTable(t *testing.T) {
	l := newLab(t, scheduler.ProfileCurrent)
	l.service(tcp80, "rr", 0, 0, dr(rs1))
	require.NoError(t, l.d.SetSysctl("secure_tcp", "2"))
	assert.Equal(t, 1, l.d.Sysctls().SecureTCP, "automatic mode with plenty of memory stays off")
	c := &tcpConn{l: l, client: netip.AddrPortFrom(cl1, 10000), target: netip.AddrPortFrom(vip, 80)}
	c.in(TCPSyn, 60)
	assert.Equal(t, "SYN_RECV", l.states()[c.client])

	require.NoError(t, l.d.SetSysctl("secure_tcp", "3"))
	c = &tcpConn{l: l, client: netip.AddrPortFrom(cl1, 10001), target: netip.AddrPortFrom(vip, 80)}
	c.in(TCPSyn, 60)
	assert.Equal(t, "SYNACK", l.states()[c.client], "input-only SYN leads to SYNACK")
	assert.Equal(t, int32(2), l.dest(tcp80, rs1).ActiveConns)
	c.in(TCPAck, 52)
	assert.Equal(t, "ESTABLISHED", l.states()[c.client])
}

func TestInConnFallsBackToTheLookupForStaleIDs(t *testing.T) {
	l := newLab(t, scheduler.ProfileCurrent)
	l.service(tcp80, "rr", 0, 0, nat(rs1), nat(rs2))
	c := l.dial(cl1, 10000)
	c.reset()
	l.sleep(11 * time.Second) // the CLOSE entry expired
	p := Packet{Proto: ProtoTCP, Src: cl1, SrcPort: 10000, Dst: vip, DstPort: 80, TCPFlags: TCPSyn, Len: 60}
	v := l.d.InConn(c.v.Conn, &p, l.now)
	require.Equal(t, Forward, v.Action)
	assert.NotEqual(t, c.v.Conn, v.Conn, "a new connection, scheduled anew")
	assert.NotEqual(t, c.v.Dest, v.Dest)
	p.TCPFlags = TCPAck
	assert.Equal(t, v.Conn, l.d.InConn(v.Conn, &p, l.now).Conn)
	assert.Equal(t, Accept, l.d.OutConn(c.v.Conn, &Packet{Proto: ProtoTCP, Src: rs2, SrcPort: 80, Dst: cl1, DstPort: 9}, l.now).Action)
}

func TestConnEntryFitsIn128Bytes(t *testing.T) {
	assert.LessOrEqual(t, unsafe.Sizeof(conn{}), uintptr(128))
}

func TestPacketPathDoesNotAllocate(t *testing.T) {
	d := director100(t, "wlc")
	in := Packet{Proto: ProtoTCP, Dst: vip, DstPort: 80}
	out := Packet{Proto: ProtoTCP}
	n := 0
	now := t0
	exchange(d, &in, &out, now) // first chunk, buckets, heap
	allocs := testing.AllocsPerRun(1000, func() {
		c := clientOf(n)
		n++
		in.Src, in.SrcPort = c.Addr(), c.Port()
		in.TCPFlags = TCPAck
		p := in
		d.PrefetchIn(&p)
		d.In(&p, now) // a lookup miss: accepted, not ours
		exchange(d, &in, &out, now)
	})
	assert.Zero(t, allocs)
}

func TestICMPErrorsFollowTheQuotedConnection(t *testing.T) {
	l := newLab(t, scheduler.ProfileCurrent)
	l.service(tcp80, "rr", 0, 0, nat(rs1))
	c := l.dial(cl1, 10000)
	// The client's host complains about a reply it got from VIP:80.
	toClient := Packet{Proto: ProtoTCP, Src: vip, SrcPort: 80, Dst: cl1, DstPort: 10000}
	v := l.d.InRelated(&toClient, 88, l.now)
	require.Equal(t, Forward, v.Action)
	assert.Equal(t, c.v.Conn, v.Conn)
	assert.Equal(t, netip.AddrPortFrom(rs1, 80), v.Dest)
	// The real server complains about a packet the client sent it.
	toRS := Packet{Proto: ProtoTCP, Src: cl1, SrcPort: 10000, Dst: rs1, DstPort: 80}
	v = l.d.OutRelated(&toRS, 88, l.now)
	require.Equal(t, Forward, v.Action)
	assert.Equal(t, netip.AddrPortFrom(vip, 80), v.Virtual)
	toRS.SrcPort = 9
	assert.Equal(t, Accept, l.d.OutRelated(&toRS, 88, l.now).Action)
	l.sleep(2 * time.Second)
	st := l.dest(tcp80, rs1).Stats
	assert.Equal(t, uint64(4), st.InPkts, "3 TCP packets and the ICMP error")
	assert.Equal(t, uint64(3), st.OutPkts)
}

func TestYearsOfIdleVirtualTimePassQuickly(t *testing.T) {
	l := newLab(t, scheduler.ProfileCurrent)
	l.service(tcp80, "wlc", 0, 0, nat(rs1))
	l.dial(cl1, 10000).close()
	l.sleep(10 * 365 * 24 * time.Hour) // estimator ticks every 2 s: skipped once idle
	di := l.dest(tcp80, rs1)
	assert.Equal(t, uint64(1), di.Stats.Conns)
	assert.Zero(t, di.Rates)
	assert.Zero(t, di.InactConns, "the TIME_WAIT entry expired on the way")
}
