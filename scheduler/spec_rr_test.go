package scheduler

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// specCase is one worked example: build a service, then check its picks.
type specCase struct {
	name  string
	sched string
	run   func(b *bench) string
	want  string
}

func runSpecCases(t *testing.T, cases []specCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			assert.Equal(t, c.want, c.run(newBench(t, c.sched)))
		})
	}
}

// addAll adds dests of weight w in the order given (ipvsadm -a order).
func addAll(b *bench, w int32, names ...string) {
	for _, n := range names {
		b.add(n, w)
	}
}

func TestRoundRobinSpecExamples(t *testing.T) {
	runSpecCases(t, []specCase{
		{"rr/the last added dest comes first", "rr", func(b *bench) string {
			addAll(b, 1, "A", "B", "C")
			return b.picks(6, closed)
		}, "C B A C B A"},
		{"rr/a dest added with the cursor on B is reached when the walk wraps", "rr", func(b *bench) string {
			addAll(b, 1, "A", "B", "C")
			b.picks(2, closed)
			b.add("D", 1)
			return b.picks(5, closed)
		}, "A D C B A"},
		{"rr/a quiescent dest is skipped", "rr", func(b *bench) string {
			addAll(b, 1, "A", "B", "C")
			b.edit("B", 0, 0, 0)
			return b.picks(4, closed)
		}, "C A C A"},
		{"rr/deleting the dest under the cursor continues with the one after it", "rr", func(b *bench) string {
			addAll(b, 1, "A", "B", "C")
			b.picks(2, closed)
			b.del("B")
			return b.picks(3, closed)
		}, "A C A"},
		{"rr/deleting the head under the cursor starts again at the head", "rr", func(b *bench) string {
			addAll(b, 1, "A", "B", "C")
			b.picks(1, closed)
			b.del("C")
			return b.picks(3, closed)
		}, "B A B"},
		{"rr/quiescing and restoring the dest under the cursor does not move it", "rr", func(b *bench) string {
			addAll(b, 1, "A", "B", "C")
			b.picks(2, closed)
			b.edit("B", 0, 0, 0)
			b.edit("B", 1, 0, 0)
			return b.picks(3, closed)
		}, "A C B"},
		{"rr/no weight anywhere means no destination", "rr", func(b *bench) string {
			addAll(b, 0, "A", "B")
			return b.picks(2, closed)
		}, "- -"},
	})
}

func TestWeightedRoundRobinSpecExamples(t *testing.T) {
	runSpecCases(t, []specCase{
		{"wrr/3,2,1 added in that order starts its first pass at cw 1", "wrr", func(b *bench) string {
			b.add("rs1", 3)
			b.add("rs2", 2)
			b.add("rs3", 1)
			return b.picks(12, closed)
		}, "rs3 rs2 rs1 rs1 rs2 rs1 rs3 rs2 rs1 rs1 rs2 rs1"},
		{"wrr/4,3,2 gives each dest its weight per cycle", "wrr", func(b *bench) string {
			b.add("A", 4)
			b.add("B", 3)
			b.add("C", 2)
			return b.picks(18, closed)
		}, "C B A A B A C B A C B A A B A C B A"},
		{"wrr/2,3,4 added in that order", "wrr", func(b *bench) string {
			b.add("C", 2)
			b.add("B", 3)
			b.add("A", 4)
			return b.picks(18, closed)
		}, "A B C A A B A B C A B C A A B A B C"},
		{"wrr/gcd 2 skips half the passes", "wrr", func(b *bench) string {
			b.add("B", 2)
			b.add("A", 4)
			return b.picks(9, closed)
		}, "A B A A B A A B A"},
		{"wrr/all weights 0 means no destination", "wrr", func(b *bench) string {
			addAll(b, 0, "A", "B")
			return b.picks(2, closed)
		}, "- -"},
		{"wrr/an edit resets the cursor and a later add and quiesce reshape the cycle", "wrr", func(b *bench) string {
			b.add("rs1", 3)
			b.add("rs2", 2)
			b.add("rs3", 1)
			b.picks(16, closed)
			b.edit("rs3", 4, 0, 0)
			first := b.picks(10, closed)
			b.add("rs4", 2)
			b.edit("rs1", 0, 0, 0)
			return first + " | " + b.picks(8, closed)
		}, "rs3 rs1 rs3 rs2 rs1 rs3 rs2 rs1 rs3 rs3 | rs3 rs4 rs3 rs2 rs3 rs4 rs3 rs2"},
		{"wrr/the cycle of passes repeats: cw 1, then 4, 3 and 2", "wrr", func(b *bench) string {
			b.add("C", 2)
			b.add("B", 3)
			b.add("A", 4)
			b.picks(9, closed) // the first cycle, started at cw 1
			return b.picks(9, closed)
		}, "A B C A A B A B C"},
		{"wrr/switching a populated service to wrr starts at the max weight", "rr", func(b *bench) string {
			b.add("rs1", 3)
			b.add("rs2", 2)
			b.add("rs3", 1)
			b.svc.SetScheduler("wrr")
			first := b.picks(4, closed)
			b.svc.SetScheduler("wrr") // the same name keeps the position
			return first + " " + b.picks(6, closed)
		}, "rs1 rs2 rs1 rs3 rs2 rs1 rs1 rs2 rs1 rs3"},
		{"wrr/deleting the dest under the cursor goes back to the head", "wrr", func(b *bench) string {
			b.add("C", 2)
			b.add("B", 3)
			b.add("A", 4)
			b.picks(2, closed) // A B: cursor on B, cw 1
			b.del("B")
			return b.picks(6, closed)
		}, "A C A A C A"},
		{"wrr/an overloaded dest is passed over", "wrr", func(b *bench) string {
			addAll(b, 1, "A", "B")
			b.dests["B"].Flags |= DestOverload
			return b.picks(3, closed)
		}, "A A A"},
		{"wrr/all dests overloaded means no destination", "wrr", func(b *bench) string {
			b.add("A", 1)
			b.add("B", 2)
			b.picks(1, closed)
			b.dests["A"].Flags |= DestOverload
			b.dests["B"].Flags |= DestOverload
			return b.picks(2, closed)
		}, "- -"},
	})
}
