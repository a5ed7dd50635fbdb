package dataplane

// timers holds the pending connection expiries in time order. Almost every
// entry is "now plus one of a few timeouts" (a protocol state's, the
// persistence timeout), and now only moves forward, so the entries of one
// timeout arrive already sorted: each timeout gets a FIFO, and an entry
// costs an append and a pop from its front instead of a sift through a heap
// of millions. An entry that would break its FIFO's order (a clock that
// went back, more distinct timeouts than FIFOs) goes to a heap. Entries due
// at the same time fire heap first, then by FIFO creation order.
type timers struct {
	heap   timerHeap
	fifos  []timerFIFO
	next   int64 // earliest pending entry; valid when n > 0
	n      int
	nextAt int // where next is: a FIFO index, or -1 for the heap
	popped int // where pop took its entry from: a FIFO index, or -1
}

// maxFIFOs bounds the per-timeout FIFOs; further timeouts use the heap.
const maxFIFOs = 16

// timerFIFO is a ring of entries with one timeout, in time order. It grows
// by half, not double: at millions of connections its spare room is part
// of each connection's memory.
type timerFIFO struct {
	timeout uint32 // ms
	ring    []timerEntry
	head    int
	len     int
}

func (q *timerFIFO) front() *timerEntry { return &q.ring[q.head] }

func (q *timerFIFO) back() *timerEntry { return &q.ring[q.wrap(q.head+q.len-1)] }

// wrap maps head+k (k < len(ring)) into the ring.
func (q *timerFIFO) wrap(i int) int {
	if i >= len(q.ring) {
		i -= len(q.ring)
	}
	return i
}

func (q *timerFIFO) push(e timerEntry) {
	if q.len == len(q.ring) {
		ring := make([]timerEntry, max(64, len(q.ring)+len(q.ring)/2))
		n := copy(ring, q.ring[q.head:])
		copy(ring[n:], q.ring[:q.head])
		q.ring, q.head = ring, 0
	}
	q.ring[q.wrap(q.head+q.len)] = e
	q.len++
}

func (q *timerFIFO) pop() timerEntry {
	e := q.ring[q.head]
	q.head = q.wrap(q.head + 1)
	q.len--
	return e
}

// push adds an entry that was armed with timeout (ms).
func (ts *timers) push(e timerEntry, timeout uint32) {
	ts.add(e, timeout)
	if ts.n == 0 || e.when < ts.next {
		ts.refresh()
	}
	ts.n++
}

func (ts *timers) add(e timerEntry, timeout uint32) {
	for k := range ts.fifos {
		q := &ts.fifos[k]
		if q.timeout != timeout {
			continue
		}
		if q.len == 0 || q.back().when <= e.when {
			q.push(e)
			return
		}
		break
	}
	if len(ts.fifos) < maxFIFOs && !ts.hasFIFO(timeout) {
		ts.fifos = append(ts.fifos, timerFIFO{timeout: timeout})
		ts.fifos[len(ts.fifos)-1].push(e)
		return
	}
	ts.heap.push(e)
}

func (ts *timers) hasFIFO(timeout uint32) bool {
	for k := range ts.fifos {
		if ts.fifos[k].timeout == timeout {
			return true
		}
	}
	return false
}

// refresh finds the earliest entry (heap first on a tie, then FIFO order).
func (ts *timers) refresh() {
	ts.nextAt = -2
	if len(ts.heap) > 0 {
		ts.next, ts.nextAt = ts.heap[0].when, -1
	}
	for k := range ts.fifos {
		q := &ts.fifos[k]
		if q.len > 0 && (ts.nextAt == -2 || q.front().when < ts.next) {
			ts.next, ts.nextAt = q.front().when, k
		}
	}
}

// due reports whether an entry is pending at or before t.
func (ts *timers) due(t int64) bool { return ts.n > 0 && ts.next <= t }

// pop removes the earliest entry.
func (ts *timers) pop() timerEntry {
	var e timerEntry
	if ts.nextAt < 0 {
		e = ts.heap.pop()
	} else {
		e = ts.fifos[ts.nextAt].pop()
	}
	ts.popped = ts.nextAt
	ts.n--
	ts.refresh()
	return e
}

// ahead is the entry at place k (0 is the front) of the FIFO the last pop
// took its entry from: due k+1 expiries of that timeout later. It is nil if
// there is none, or if that pop came from the heap.
func (ts *timers) ahead(k int) *timerEntry {
	if ts.popped < 0 {
		return nil
	}
	q := &ts.fifos[ts.popped]
	if k >= q.len {
		return nil
	}
	return &q.ring[q.wrap(q.head+k)]
}

// timerEntry is one pending expiry. Entries are lazy: re-arming a conn to a
// later time leaves its entry in place, and the entry re-queues itself when
// it comes due early; only a move to an earlier time pushes a new entry.
type timerEntry struct {
	when int64
	idx  uint32
	gen  uint32
}

// timerHeap is a 4-ary min-heap of timer entries.
type timerHeap []timerEntry

func (h *timerHeap) push(e timerEntry) {
	*h = append(*h, e)
	s := *h
	i := len(s) - 1
	for i > 0 {
		p := (i - 1) / 4
		if s[p].when <= e.when {
			break
		}
		s[i] = s[p]
		i = p
	}
	s[i] = e
}

func (h *timerHeap) pop() timerEntry {
	s := *h
	top := s[0]
	last := s[len(s)-1]
	s = s[:len(s)-1]
	*h = s
	n := len(s)
	if n == 0 {
		return top
	}
	i := 0
	for {
		c := 4*i + 1
		if c >= n {
			break
		}
		m := c
		for k := c + 1; k < c+4 && k < n; k++ {
			if s[k].when < s[m].when {
				m = k
			}
		}
		if s[m].when >= last.when {
			break
		}
		s[i] = s[m]
		i = m
	}
	s[i] = last
	return top
}
