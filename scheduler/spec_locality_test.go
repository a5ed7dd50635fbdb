package scheduler

import (
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func addRS321(b *bench) {
	b.add("rs1", 3)
	b.add("rs2", 2)
	b.add("rs3", 1)
}

func TestLocalitySpecExamples(t *testing.T) {
	for _, sched := range []string{"lblc", "lblcr"} {
		runSpecCases(t, []specCase{
			{sched + "/the cached dest is kept while no dest is below half its weight", sched, func(b *bench) string {
				addRS321(b)
				return b.picks(8, held)
			}, "rs3 rs3 rs2 rs2 rs2 rs1 rs1 rs1"},
			{sched + "/each destination address gets its own entry", sched, func(b *bench) string {
				addAll(b, 1, "A", "B")
				x := b.picksFrom(2, closed, toVIP("10.0.0.100"))
				return x + " | " + b.picksFrom(2, closed, toVIP("10.0.0.101"))
			}, "B B | A A"},
			{sched + "/an OVERLOAD cached dest stays for lblc, lblcr's set passes it over", sched, func(b *bench) string {
				addAll(b, 1, "A", "B")
				first := b.picks(1, closed)
				b.dests["B"].Flags |= DestOverload
				return first + " " + b.picks(2, closed)
			}, map[string]string{"lblc": "B B B", "lblcr": "B A A"}[sched]},
		})
	}
}

func TestLocalityQuiescedCachedDest(t *testing.T) {
	t.Run("lblc/quiescing the cached dest re-picks by wlc and overwrites the entry", func(t *testing.T) {
		b := newBench(t, "lblc")
		addAll(b, 1, "A", "B")
		require.Equal(t, "B B", b.picks(2, held))
		b.edit("B", 0, 0, 0)
		assert.Equal(t, "A", b.picks(1, held))
		b.edit("B", 1, 0, 0)
		assert.Equal(t, "A A", b.picks(2, held), "the entry now names A")
	})
	t.Run("lblcr/quiescing the cached dest adds the wlc choice to the set", func(t *testing.T) {
		b := newBench(t, "lblcr")
		addAll(b, 1, "A", "B")
		require.Equal(t, "B B", b.picks(2, held))
		b.edit("B", 0, 0, 0)
		assert.Equal(t, "A", b.picks(1, held))
		b.edit("B", 1, 0, 0)
		// The set is {A, B}: its least loaded member (A, 1 active, against
		// B's 2) serves.
		assert.Equal(t, "A A", b.picks(2, held))
		assert.Len(t, b.svc.sched.(*LBLCR).cache.get(toVIP("10.0.0.100").Dst).set, 2)
	})
}

func TestLocalityCacheHoldsDestIdentity(t *testing.T) {
	for _, sched := range []string{"lblc", "lblcr"} {
		t.Run(sched+"/a dest back from the trash is the cached one again", func(t *testing.T) {
			b := newBench(t, sched)
			addAll(b, 1, "A", "B")
			require.Equal(t, "B", b.picks(1, closed))
			b.del("B")
			b.add("B", 1) // the same object, from the trash
			assert.Equal(t, "B", b.picks(1, closed))
		})
		t.Run(sched+"/a deleted dest is not used from the cache", func(t *testing.T) {
			b := newBench(t, sched)
			addAll(b, 1, "A", "B")
			require.Equal(t, "B", b.picks(1, closed))
			b.del("B")
			assert.Equal(t, "A", b.picks(1, closed))
		})
		t.Run(sched+"/a new object at the same address is another dest", func(t *testing.T) {
			b := newBench(t, sched)
			addAll(b, 1, "A", "B")
			b.dests["A"].ActiveConns = 5 // make the wlc choice B either way
			require.Equal(t, "B", b.picks(1, closed))
			old := b.dests["B"]
			b.del("B")
			fresh := &Dest{Addr: old.Addr, Port: old.Port}
			fresh.SetWeight(1, true)
			b.svc.AddDest(fresh)
			b.names[fresh] = "B'"
			assert.Equal(t, "B'", b.picks(1, closed))
		})
	}
}

func TestLocalitySetShedsItsBusiestMemberAfterExpiration(t *testing.T) {
	b := newBench(t, "lblcr")
	b.svc.Tunables = &Tunables{LBLCRExpiration: time.Hour}
	addAll(b, 1, "A", "B")
	require.Equal(t, "B", b.picks(1, held))
	b.edit("B", 0, 0, 0)
	require.Equal(t, "A", b.picks(1, held))
	b.edit("B", 1, 0, 0)
	en := b.svc.sched.(*LBLCR).cache.get(toVIP("10.0.0.100").Dst)
	require.Len(t, en.set, 2)

	b.now = b.now.Add(time.Hour)
	b.pick(client("10.2.0.9"), none)
	assert.Len(t, en.set, 2, "not after exactly lblcr_expiration")

	b.dests["B"].BindConn()
	b.dests["B"].SetActive(true) // B is now the busiest member
	b.now = b.now.Add(time.Second)
	assert.Equal(t, "A", b.pick(client("10.2.0.9"), none))
	require.Len(t, en.set, 1)
	assert.Equal(t, "A", b.names[en.set[0]])
}

func TestLocalityGarbageCollection(t *testing.T) {
	vip := func(i int) netip.Addr { return netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}) }
	fill := func(t *testing.T, b *bench, n int) *localityCache {
		for i := range n {
			f := client("10.2.0.1")
			f.Dst = vip(i)
			require.NotEqual(t, "-", b.pick(f, none))
		}
		return b.svc.sched.(*LBLC).cache
	}

	t.Run("lblc/entries unused for lblc_expiration go at the 30th tick", func(t *testing.T) {
		b := newBench(t, "lblc")
		addAll(b, 1, "A", "B")
		c := fill(t, b, 10)
		start := b.now
		for tick := 1; tick < 30; tick++ {
			b.svc.Expire(start.Add(25 * time.Hour))
		}
		assert.Equal(t, 10, c.entries, "29 ticks only count")
		b.svc.Expire(start.Add(24*time.Hour - time.Second))
		assert.Equal(t, 10, c.entries, "a full check keeps entries used within the expiration")
		for tick := 1; tick < 30; tick++ {
			b.svc.Expire(start.Add(25 * time.Hour))
		}
		b.svc.Expire(start.Add(24 * time.Hour))
		assert.Zero(t, c.entries)
	})

	t.Run("lblc/an over-full table sheds entries idle for 6 minutes", func(t *testing.T) {
		b := newBench(t, "lblc")
		addAll(b, 1, "A", "B")
		c := fill(t, b, localityMaxSize+1)
		b.svc.Expire(b.now.Add(6*time.Minute - time.Second))
		assert.Equal(t, localityMaxSize+1, c.entries, "nothing is idle long enough yet")
		b.svc.Expire(b.now.Add(6 * time.Minute))
		assert.LessOrEqual(t, c.entries, localityMaxSize)
		assert.Greater(t, c.entries, localityMaxSize-64, "it stops at the bucket that meets the goal")
	})

	t.Run("lblc/an over-full table creates no more entries", func(t *testing.T) {
		b := newBench(t, "lblc")
		addAll(b, 1, "A", "B")
		c := fill(t, b, localityMaxSize+5)
		assert.Equal(t, localityMaxSize+1, c.entries)
	})
}

func TestLocalityCacheKeepsDeletedDestsReferenced(t *testing.T) {
	for _, sched := range []string{"lblc", "lblcr"} {
		t.Run(sched+"/a cached dest is held until its entry expires", func(t *testing.T) {
			b := newBench(t, sched)
			addAll(b, 1, "A", "B")
			require.Equal(t, "B", b.picks(1, closed))
			b.del("B")
			assert.True(t, b.svc.Holds(b.dests["B"]))
			assert.False(t, b.svc.Holds(b.dests["A"]), "A was never cached")
			for range localityFullEvery {
				b.svc.Expire(b.now.Add(24 * time.Hour))
			}
			assert.False(t, b.svc.Holds(b.dests["B"]))
		})
	}
	t.Run("rr/holds nothing beyond its list", func(t *testing.T) {
		b := newBench(t, "rr")
		b.add("A", 1)
		b.picks(1, closed)
		b.del("A")
		assert.False(t, b.svc.Holds(b.dests["A"]))
	})
}
