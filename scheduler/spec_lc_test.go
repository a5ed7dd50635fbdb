package scheduler

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// addCBA builds the §2.6 service: A w1, B w2, C w3 added in that order, so
// the list is C, B, A.
func addCBA(b *bench) {
	b.add("A", 1)
	b.add("B", 2)
	b.add("C", 3)
}

// addBA builds the other §2.6 service: A w1 added first, B w10.
func addBA(b *bench) {
	b.add("A", 1)
	b.add("B", 10)
}

func TestLeastConnectionSpecExamples(t *testing.T) {
	runSpecCases(t, []specCase{
		{"wlc/held connections on 3,2,1", "wlc", func(b *bench) string { addCBA(b); return b.picks(12, held) },
			"C B A C B C C B A C B C"},
		{"sed/held connections on 3,2,1", "sed", func(b *bench) string { addCBA(b); return b.picks(12, held) },
			"C B C C B A C B C C B A"},
		{"nq/held connections on 3,2,1", "nq", func(b *bench) string { addCBA(b); return b.picks(12, held) },
			"C B A C C B C B C C B A"},
		{"lc/held connections on 3,2,1 ignore the weights", "lc", func(b *bench) string { addCBA(b); return b.picks(12, held) },
			"C B A C B A C B A C B A"},
		{"wlc/10 and 1 still uses the slow dest early", "wlc", func(b *bench) string { addBA(b); return b.picks(12, held) },
			"B A B B B B B B B B B B"},
		{"sed/10 and 1 uses the slow dest only when it is not expected to be slower", "sed", func(b *bench) string { addBA(b); return b.picks(12, held) },
			"B B B B B B B B B B A B"},
		{"nq/10 and 1 takes an idle dest at once", "nq", func(b *bench) string { addBA(b); return b.picks(12, held) },
			"B A B B B B B B B B B B"},
		{"lc/one held connection is worth 257 closed ones", "lc", func(b *bench) string {
			b.add("A", 1)
			b.add("B", 1)
			b.picks(1, held)
			return b.picks(258, closed)
		}, repeat("A", 257) + " B"},
		{"lc/two held connections are worth 514 closed ones", "lc", func(b *bench) string {
			b.add("A", 1)
			b.add("B", 1)
			b.picks(1, held)
			b.dests["B"].BindConn() // a second held connection on B
			b.dests["B"].SetActive(true)
			return b.picks(515, closed)
		}, repeat("A", 514) + " B"},
		{"wlc/A takes 86 closed connections against one held on B of weight 3", "wlc", func(b *bench) string {
			b.add("A", 1)
			b.add("B", 3)
			b.picks(1, held)
			return b.picks(93, closed)
		}, repeat("A", 86) + " B B A B B B A"},
		{"fo/the highest weight takes every connection", "fo", func(b *bench) string {
			b.add("A", 3)
			b.add("B", 5)
			b.add("C", 1)
			first := b.picks(3, held)
			b.edit("B", 0, 0, 0)
			return first + " | " + b.picks(3, held)
		}, "B B B | A A A"},
		{"fo/ties go to the first in list order", "fo", func(b *bench) string {
			addAll(b, 2, "A", "B")
			return b.picks(2, held)
		}, "B B"},
		{"ovf/each dest fills to weight+1 active connections before the next", "ovf", func(b *bench) string {
			b.add("A", 2)
			b.add("B", 3)
			b.add("C", 1)
			return b.picks(10, held)
		}, "B B B B A A A C C -"},
		{"ovf/inactive connections do not count", "ovf", func(b *bench) string {
			b.add("A", 1)
			return b.picks(5, closed)
		}, "A A A A A"},
	})
}

// The stock 6.1 source weighs an active connection as 256 inactive ones.
func TestLeastConnectionStockProfile(t *testing.T) {
	runSpecCases(t, []specCase{
		{"lc/stock: one held connection is worth 256 closed ones", "lc", func(b *bench) string {
			b.svc.Profile = Profile61Stock
			b.add("A", 1)
			b.add("B", 1)
			b.picks(1, held)
			return b.picks(257, closed)
		}, repeat("A", 256) + " B"},
		{"wlc/stock: the third pick after the 86 goes to B", "wlc", func(b *bench) string {
			b.svc.Profile = Profile61Stock
			b.add("A", 1)
			b.add("B", 3)
			b.picks(1, held)
			return b.picks(89, closed)
		}, repeat("A", 86) + " B B B"},
	})
}

// seq is a random source that replays fixed draws.
func seq(draws ...uint32) func() uint32 {
	return func() uint32 {
		v := draws[0]
		draws = draws[1:]
		return v
	}
}

func TestTwoChoicesPicksTheLighterOfTwoWeightedDraws(t *testing.T) {
	// List C(3), B(2), A(1): total 6, draws are taken mod 7.
	cases := []struct {
		name  string
		draws []uint32
		loadC int32 // active connections on C
		want  string
	}{
		{"twos/a draw of 0 lands on the first dest", []uint32{0, 0}, 0, "C"},
		{"twos/draws 3 and 6 land on C and A; equal load keeps choice 1", []uint32{3, 6}, 0, "C"},
		{"twos/draws 3 and 6: a loaded C loses to an idle A", []uint32{3, 6}, 1, "A"},
		{"twos/draw 4 lands on B, draw 14 wraps to 0 and lands on C", []uint32{4, 14}, 0, "B"},
		{"twos/draw 5 lands on B", []uint32{5, 5}, 0, "B"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := newBench(t, "twos")
			addCBA(b)
			b.dests["C"].ActiveConns = c.loadC
			b.svc.Rand = seq(c.draws...)
			assert.Equal(t, c.want, b.pick(client("10.2.0.1"), none))
		})
	}
}

func TestTwoChoicesSkipsQuiescentAndOverloadedDests(t *testing.T) {
	b := newBench(t, "twos")
	addCBA(b)
	b.edit("C", 0, 0, 0)
	b.dests["A"].Flags |= DestOverload
	b.svc.UpdDest(b.dests["A"]) // a direct write: let the scheduler's index know
	assert.Equal(t, repeat("B", 50), b.picks(50, closed))
	b.edit("B", 0, 0, 0)
	assert.Equal(t, "-", b.picks(1, closed))
}
