package scheduler

import "time"

// scanCutoff is the list length from which lc, wlc, sed, nq, fo, ovf and
// twos keep an index and answer from it instead of walking the list as the
// kernel does. Both give the same dest (index_test.go checks them against
// each other); the walk is cheaper for short lists, the index for long ones.
var scanCutoff = 32

// unindex detaches the list from any index: its dests' changes then cost
// nothing.
func unindex(svc *Service) {
	for _, d := range svc.Dests {
		d.index = nil
	}
}

// rankTree is a tournament tree over the dest list: leaf i is list[i] when
// it is eligible, each inner node the better of its two children and the
// left one on ties. The root is therefore the first best dest in list order,
// which is what the kernel's strict-comparison walk returns whenever
// "better" is a strict weak order (for wlc and sed, comparing load/weight by
// cross-multiplication over positive weights is one). A dest's change costs
// O(log n); a pick reads the root.
//
// The last dest to change is re-ranked only when another one changes or a
// pick reads the root: a connection moves its dest's load three or four
// times (bind, active, inactive, unbind) between two picks of that dest, and
// all but one of those re-rankings would be overwritten unread.
type rankTree struct {
	svc      *Service
	eligible func(p Profile, d *Dest) bool
	better   func(p Profile, a, b *Dest) bool // a strictly better than b
	leaves   int                              // a power of two ≥ len(list)
	node     []*Dest                          // heap order: node[1] is the root
	pending  *Dest                            // changed since the tree last ranked it
}

// build indexes the whole list; the hooks call it when the list changes,
// since every insertion at the head moves every position.
func (t *rankTree) build(svc *Service, owner loadIndex) {
	t.svc, t.pending = svc, nil
	n := len(svc.Dests)
	if n < scanCutoff {
		unindex(svc) // short lists are walked: keeping an index would only cost
		return
	}
	t.leaves = 1
	for t.leaves < n {
		t.leaves *= 2
	}
	if cap(t.node) < 2*t.leaves {
		t.node = make([]*Dest, 2*t.leaves)
	}
	t.node = t.node[:2*t.leaves]
	clear(t.node)
	for i, d := range svc.Dests {
		d.index, d.pos = owner, i
		if t.eligible(svc.Profile, d) {
			t.node[t.leaves+i] = d
		}
	}
	for j := t.leaves - 1; j >= 1; j-- {
		t.node[j] = t.match(t.node[2*j], t.node[2*j+1])
	}
}

// changed notes that d's load or eligibility moved.
func (t *rankTree) changed(d *Dest) {
	if t.pending != d {
		t.flush()
		t.pending = d
	}
}

// flush re-ranks the pending dest, if any.
func (t *rankTree) flush() {
	if t.pending != nil {
		t.update(t.pending)
		t.pending = nil
	}
}

// update re-ranks d from its leaf up; every other leaf must be ranked. It stops at the first match whose
// winner is another dest that won there before: that winner's load did not
// move, so no match above it changes.
func (t *rankTree) update(d *Dest) {
	j := t.leaves + d.pos
	if t.eligible(t.svc.Profile, d) {
		t.node[j] = d
	} else {
		t.node[j] = nil
	}
	for j /= 2; j >= 1; j /= 2 {
		w := t.match(t.node[2*j], t.node[2*j+1])
		if w == t.node[j] && w != d {
			return
		}
		t.node[j] = w
	}
}

func (t *rankTree) match(left, right *Dest) *Dest {
	if left == nil || right != nil && t.better(t.svc.Profile, right, left) {
		return right
	}
	return left
}

func (t *rankTree) best() *Dest {
	t.flush()
	return t.node[1]
}

// ranked is the common body of the schedulers that pick the best dest by
// one comparison (lc, wlc, sed, nq, fo, ovf): the kernel's walk for short
// lists, the rank tree's root for long ones.
type ranked struct {
	name string
	walk func(svc *Service) *Dest
	rank rankTree
}

func (r *ranked) init(svc *Service, name string, walk func(*Service) *Dest,
	eligible func(Profile, *Dest) bool, better func(Profile, *Dest, *Dest) bool) {
	r.name, r.walk = name, walk
	r.rank.eligible, r.rank.better = eligible, better
	r.rank.build(svc, r)
}

func (r *ranked) Name() string { return r.name }

func (r *ranked) Schedule(svc *Service, _ Flow, _ time.Time) *Dest {
	if len(svc.Dests) < scanCutoff {
		return r.walk(svc)
	}
	return r.rank.best()
}

func (r *ranked) loadChanged(d *Dest)                  { r.rank.changed(d) }
func (r *ranked) AddDest(svc *Service, _ *Dest)        { r.rank.build(svc, r) }
func (r *ranked) DelDest(svc *Service, _ *Dest, _ int) { r.rank.build(svc, r) }

// UpdDest has nothing left to do: Service.UpdDest has re-ranked d.
func (r *ranked) UpdDest(*Service, *Dest) {}

// eligibleUsable is the eligibility of lc, wlc, sed and nq.
func eligibleUsable(_ Profile, d *Dest) bool { return usable(d) }

// weightTree finds the dest a weighted draw of twos lands on. Two
// structures answer the same question: a Fenwick tree over the usable
// weights in list order, which a change of weight or OVERLOAD updates in
// O(log n) and which answers in O(log n) dependent steps; and a guide table
// over the prefix sums, which answers in O(1) steps on average but costs
// O(n) to rebuild. Weights and OVERLOAD change far more rarely than picks
// happen, so the guide is rebuilt only once the weights have held still for
// n picks (those picks, answered by the tree, pay for the rebuild); a list
// whose weights keep changing stays on the tree.
type weightTree struct {
	weight []int64 // per list position: the weight if usable, else 0
	fen    []int64 // 1-based Fenwick sums of weight
	total  int64

	// sums are the inclusive prefix sums of weight; guide[k] is the first
	// position whose sum reaches k<<shift + 1, so a draw r is found by a
	// short scan of sums from guide[(r-1)>>shift]. There are about 2n
	// buckets: a bucket holds 1/2 a sum on average.
	sums  []int64
	guide []uint32
	shift uint
	fresh bool // sums and guide follow weight
	stale int  // picks answered by the tree since the last change
}

// beyondList is the weight of the positions past the end of the list.
const beyondList = int64(1) << 62

func usableWeight(d *Dest) int64 {
	if usable(d) {
		return int64(d.Weight)
	}
	return 0
}

func (t *weightTree) build(svc *Service, owner loadIndex) {
	n := len(svc.Dests)
	if n < scanCutoff {
		unindex(svc)
		return
	}
	size := 1
	for size < n+1 {
		size *= 2
	}
	t.weight = append(t.weight[:0], make([]int64, n)...)
	t.fen = append(t.fen[:0], make([]int64, size)...)
	for j := n + 1; j < size; j++ {
		t.fen[j] = beyondList
	}
	t.total = 0
	for i, d := range svc.Dests {
		d.index, d.pos = owner, i
		t.set(i, usableWeight(d))
	}
	t.rebuildGuide() // the list change already cost O(n)
}

func (t *weightTree) update(d *Dest) { t.set(d.pos, usableWeight(d)) }

func (t *weightTree) set(pos int, w int64) {
	delta := w - t.weight[pos]
	if delta == 0 {
		return
	}
	t.weight[pos] = w
	t.total += delta
	t.fresh, t.stale = false, 0
	for j := pos + 1; j < len(t.fen); j += j & -j {
		t.fen[j] += delta
	}
}

// find2 returns, for each of r1 and r2 (both in [1, total]), the list
// position of the first usable dest whose running weight sum reaches it:
// where the kernel's walk, subtracting each weight from the draw, first
// sees it ≤ 0.
func (t *weightTree) find2(r1, r2 int64) (int, int) {
	if !t.fresh {
		if t.stale++; t.stale < len(t.weight) {
			return t.descend2(r1, r2)
		}
		t.rebuildGuide()
	}
	return t.guided(r1), t.guided(r2)
}

// guided finds r from the guide table.
func (t *weightTree) guided(r int64) int {
	i := int(t.guide[uint64(r-1)>>t.shift])
	for t.sums[i] < r {
		i++
	}
	return i
}

// rebuildGuide recomputes sums and guide from weight.
func (t *weightTree) rebuildGuide() {
	n := len(t.weight)
	t.sums = append(t.sums[:0], make([]int64, n)...)
	var sum int64
	for i, w := range t.weight {
		sum += w
		t.sums[i] = sum
	}
	t.shift = 0
	for (t.total-1)>>t.shift >= int64(2*n) {
		t.shift++
	}
	buckets := 0
	if t.total > 0 {
		buckets = int((t.total-1)>>t.shift) + 1
	}
	t.guide = append(t.guide[:0], make([]uint32, buckets)...)
	i := 0
	for k := range t.guide {
		for t.sums[i] < int64(k)<<t.shift+1 {
			i++
		}
		t.guide[k] = uint32(i)
	}
	t.fresh, t.stale = true, 0
}

// descend2 answers find2 from the Fenwick tree. The two descents run side
// by side so their memory loads overlap.
func (t *weightTree) descend2(r1, r2 int64) (int, int) {
	p1, p2 := 0, 0
	for step := len(t.fen) / 2; step > 0; step /= 2 {
		// Branch-free "if v < r { p += step; r -= v }": the draws are
		// random, so a branch here would mispredict half the time. No
		// overflow: 0 ≤ v ≤ beyondList + total and 1 ≤ r ≤ total + 1.
		v1, v2 := t.fen[p1+step], t.fen[p2+step]
		take1, take2 := int64(uint64(v1-r1)>>63), int64(uint64(v2-r2)>>63)
		p1 += step & int(-take1)
		p2 += step & int(-take2)
		r1 -= v1 & -take1
		r2 -= v2 & -take2
	}
	return p1, p2
}
