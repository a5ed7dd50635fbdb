package dataplane

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestTimersPopEarliest mixes the cases the FIFOs see — a clock that mostly
// moves forward and sometimes back, more distinct timeouts than FIFOs, pops
// between pushes — and checks every pop against a sorted reference.
func TestTimersPopEarliest(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var ts timers
	var pending []int64 // sorted
	now := int64(1000)
	pop := func() {
		e := ts.pop()
		require.Equal(t, pending[0], e.when)
		pending = pending[1:]
	}
	for n := range 5000 {
		now += r.Int64N(50)
		if r.IntN(20) == 0 {
			now -= r.Int64N(200) // an out-of-order caller
		}
		timeout := uint32(r.IntN(3 * maxFIFOs))
		if r.IntN(2) == 0 {
			timeout = uint32(r.IntN(3)) // the common, repeated timeouts
		}
		e := timerEntry{when: now + int64(timeout)*10, idx: uint32(n)}
		ts.push(e, timeout)
		k, _ := slices.BinarySearch(pending, e.when)
		pending = slices.Insert(pending, k, e.when)
		require.True(t, ts.due(pending[0]))
		require.False(t, ts.due(pending[0]-1))
		for r.IntN(3) == 0 && ts.n > 0 {
			pop()
		}
	}
	for ts.n > 0 {
		pop()
	}
	assert.Empty(t, pending)
	assert.Len(t, ts.fifos, maxFIFOs)
	assert.NotZero(t, cap(ts.heap), "out-of-order entries and extra timeouts use the heap")
}

// TestTimersAheadIsTheNextOfTheSameFIFO checks what prefetchExpiry looks at:
// after a pop, ahead(k) is the FIFO's entry k+1 after the popped one, nil
// past its end and nil after a pop from the heap.
func TestTimersAheadIsTheNextOfTheSameFIFO(t *testing.T) {
	var ts timers
	for i := range 10 {
		ts.push(timerEntry{when: int64(100 + i), idx: uint32(i)}, 7)
	}
	ts.push(timerEntry{when: 50, idx: 99}, 3)
	ts.push(timerEntry{when: 40, idx: 98}, 3) // out of order: the heap
	require.Equal(t, uint32(98), ts.pop().idx)
	assert.Nil(t, ts.ahead(0), "popped from the heap")
	require.Equal(t, uint32(99), ts.pop().idx)
	assert.Nil(t, ts.ahead(0), "the timeout-3 FIFO is empty")
	require.Equal(t, uint32(0), ts.pop().idx)
	require.NotNil(t, ts.ahead(0))
	assert.Equal(t, uint32(1), ts.ahead(0).idx)
	assert.Equal(t, uint32(9), ts.ahead(8).idx)
	assert.Nil(t, ts.ahead(9))
}
