package dataplane

import (
	"net/netip"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/lvslab/lvslab/scheduler"
)

// clientOf spreads connection n over 2^24 client addresses and 2^8 ports.
func clientOf(n int) netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, byte(n >> 16), byte(n >> 8), byte(n)}), uint16(1024+n>>24))
}

// director100 is a director with one NAT service of 100 destinations.
func director100(tb testing.TB, sched string) *Director {
	d := New(scheduler.ProfileCurrent, t0)
	key := ServiceKey{Proto: ProtoTCP, Addr: vip, Port: 80}
	if e := d.AddService(ServiceConfig{Key: key, Scheduler: sched}, t0); e != 0 {
		tb.Fatal(e)
	}
	for i := range 100 {
		dc := DestConfig{Addr: netip.AddrFrom4([4]byte{10, 200, 0, byte(i + 1)}), Port: 80, Method: MethodMasq, Weight: int32(1 + i%4)}
		if e := d.AddDest(key, dc, t0); e != 0 {
			tb.Fatal(e)
		}
	}
	return d
}

// exchange runs one NAT connection's nine packets, as replay models them:
// the SYN is looked up, the rest go by connection id.
func exchange(d *Director, in, out *Packet, now time.Time) {
	in.TCPFlags, in.Len = TCPSyn, 60
	v := d.In(in, now)
	out.Src, out.SrcPort = v.Dest.Addr(), v.Dest.Port()
	out.Dst, out.DstPort = in.Src, in.SrcPort
	for _, s := range [...]struct {
		in    bool
		flags uint8
		n     int
	}{
		{false, TCPSyn | TCPAck, 60}, {true, TCPAck, 52}, {false, TCPAck, 64}, {true, TCPAck, 52},
		{true, TCPFin | TCPAck, 52}, {false, TCPAck, 52}, {false, TCPFin | TCPAck, 52}, {true, TCPAck, 52},
	} {
		if s.in {
			in.TCPFlags, in.Len = s.flags, s.n
			d.InConn(v.Conn, in, now)
		} else {
			out.TCPFlags, out.Len = s.flags, s.n
			d.OutConn(v.Conn, out, now)
		}
	}
}

// replayRate is the benchmark's connection rate in virtual time: 10 000 new
// connections a second, so that the TIME_WAIT entries of the last 120 s
// (1.2 M) stay live.
const replayRate = 100 * time.Microsecond

// steady is a director per scheduler that has run 130 s of virtual time at
// replayRate: connections expire at the rate they are made, the table has
// stopped growing. It is built once and every round continues it.
var steady = map[string]*steadyReplay{}

type steadyReplay struct {
	d         *Director
	n         int // connections made so far
	now       time.Time
	heapBytes int64 // heap the director holds at steady state
}

func steadyDirector(b *testing.B, sched string) *steadyReplay {
	if s := steady[sched]; s != nil {
		return s
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	s := &steadyReplay{d: director100(b, sched), now: t0}
	s.run(130*int(time.Second/replayRate), false)
	runtime.GC()
	runtime.ReadMemStats(&after)
	s.heapBytes = int64(after.HeapAlloc) - int64(before.HeapAlloc)
	steady[sched] = s
	return s
}

// run makes n more connections, each a full exchange. With lookahead it
// calls PrefetchIn for the next connection's SYN first, as a caller
// holding a batch of packets can.
func (s *steadyReplay) run(n int, lookahead bool) {
	in := Packet{Proto: ProtoTCP, Dst: vip, DstPort: 80}
	next := in
	out := Packet{Proto: ProtoTCP}
	for range n {
		if lookahead {
			c := clientOf(s.n + 1)
			next.Src, next.SrcPort = c.Addr(), c.Port()
			s.d.PrefetchIn(&next)
		}
		c := clientOf(s.n)
		in.Src, in.SrcPort = c.Addr(), c.Port()
		exchange(s.d, &in, &out, s.now)
		s.now = s.now.Add(replayRate)
		s.n++
	}
}

// benchmarkReplay replays b.N connections over 100 destinations on a
// director in steady state (steadyDirector): each connection costs its
// nine packets, its expiry and its share of the table's upkeep. It reports
// connections per CPU second and heap bytes per live connection.
func benchmarkReplay(b *testing.B, sched string, lookahead bool) {
	s := steadyDirector(b, sched)
	live := s.d.ConnCount()
	b.ReportAllocs()
	cpu0 := cpuTime()
	b.ResetTimer()
	s.run(b.N, lookahead)
	b.StopTimer()
	// Per CPU second, not per wall second: the machines this runs on are
	// shared, and the target is per core.
	b.ReportMetric(float64(b.N)/(cpuTime()-cpu0).Seconds(), "conns/cpu-s")
	b.ReportMetric(float64(s.heapBytes)/float64(live), "B/liveconn")
	if now := s.d.ConnCount(); now < live*9/10 || now > live*11/10 {
		b.Fatalf("not in steady state: %d live conns, %d before", now, live)
	}
}

func BenchmarkReplayWLC(b *testing.B) { benchmarkReplay(b, "wlc", false) }
func BenchmarkReplayMH(b *testing.B)  { benchmarkReplay(b, "mh", false) }

// BenchmarkReplayWLCPrefetchIn is BenchmarkReplayWLC for a caller that
// prefetches the next SYN's bucket (Director.PrefetchIn).
func BenchmarkReplayWLCPrefetchIn(b *testing.B) { benchmarkReplay(b, "wlc", true) }

// cpuTime is the process's user and system time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// big is the 10 M-connection director, built once for all b.N rounds.
var big struct {
	sync.Once
	d *Director
}

// BenchmarkLookup10M measures the packet path for an established
// connection (lookup, counters, state machine, timer) in a table of 10 M
// connections.
func BenchmarkLookup10M(b *testing.B) {
	if testing.Short() {
		b.Skip("builds 10 M connections")
	}
	const n = 10_000_000
	big.Do(func() {
		big.d = director100(b, "rr")
		p := Packet{Proto: ProtoTCP, Dst: vip, DstPort: 80, TCPFlags: TCPSyn, Len: 60}
		for i := range n {
			c := clientOf(i)
			p.Src, p.SrcPort = c.Addr(), c.Port()
			big.d.In(&p, t0)
		}
	})
	d := big.d
	if d.ConnCount() != n {
		b.Fatalf("%d conns", d.ConnCount())
	}
	clients := make([]netip.AddrPort, 1<<16)
	for i := range clients {
		clients[i] = clientOf(int(mix64(uint64(i)) % n))
	}
	// baseline: one random read in the same memory, each address depending
	// on the previous read (the machine's memory latency: a lookup is a
	// bucket read and then a connection read); table: the connection lookup
	// alone; packet: In for an ACK of an established connection (lookup,
	// counters, state machine, timer).
	b.Run("baseline", func(b *testing.B) {
		var prev int64
		cpu0 := cpuTime()
		for i := range b.N {
			prev = d.conns.at(uint32(mix64(uint64(i)+uint64(prev&1))%n + 1)).expires
		}
		b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
		if prev == 42 {
			b.Log(prev)
		}
	})
	b.Run("table", func(b *testing.B) {
		va := addr16(vip)
		cpu0 := cpuTime()
		for i := range b.N {
			c := clients[i&(len(clients)-1)]
			ca := addr16(c.Addr())
			if d.conns.inGet(4, ProtoTCP, &ca, c.Port(), &va, 80) == 0 {
				b.Fatal("lost a connection")
			}
		}
		b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
	})
	// miss: the lookup of a new connection's first packet, a client the
	// table does not hold (the ports above those clientOf gave out).
	b.Run("miss", func(b *testing.B) {
		va := addr16(vip)
		cpu0 := cpuTime()
		for i := range b.N {
			c := clients[i&(len(clients)-1)]
			ca := addr16(c.Addr())
			if d.conns.inGet(4, ProtoTCP, &ca, c.Port()+1, &va, 80) != 0 {
				b.Fatal("found a connection never made")
			}
		}
		b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
	})
	b.Run("packet", func(b *testing.B) {
		p := Packet{Proto: ProtoTCP, Dst: vip, DstPort: 80, TCPFlags: TCPAck, Len: 52}
		b.ReportAllocs()
		cpu0 := cpuTime()
		for i := range b.N {
			c := clients[i&(len(clients)-1)]
			p.Src, p.SrcPort = c.Addr(), c.Port()
			if d.In(&p, t0).Action != Forward {
				b.Fatal("lost a connection")
			}
		}
		b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
	})
}

// BenchmarkGrow1M doubles the bucket array of a 1 M-entry table (load 1/2,
// the point where hash grows it), the cost a growing table pays per entry.
func BenchmarkGrow1M(b *testing.B) {
	va := addr16(vip)
	var spent time.Duration
	entries := 0
	for range b.N {
		b.StopTimer()
		tab := newConnTable(9)
		tab.buckets = make([]uint64, 1<<21)
		for n := range 1 << 20 {
			c := clientOf(n)
			i := tab.alloc()
			e := tab.at(i)
			e.af, e.proto = 4, ProtoTCP
			e.caddr, e.cport = addr16(c.Addr()), c.Port()
			e.vaddr, e.vport = va, 80
			tab.hash(i)
		}
		b.StartTimer()
		cpu0 := cpuTime()
		tab.grow()
		spent += cpuTime() - cpu0
		entries += tab.count
	}
	b.ReportMetric(float64(spent)/float64(entries), "cpu-ns/entry")
}

// mix64 is a 64-bit finalizer (MurmurHash3's fmix64): it spreads the
// benchmarks' indices over the table.
func mix64(h uint64) uint64 {
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return h
}
