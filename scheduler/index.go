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
type rankTree struct {
	svc      *Service
	eligible func(p Profile, d *Dest) bool
	better   func(p Profile, a, b *Dest) bool // a strictly better than b
	leaves   int                              // a power of two ≥ len(list)
	node     []*Dest                          // heap order: node[1] is the root
}

// build indexes the whole list; the hooks call it when the list changes,
// since every insertion at the head moves every position.
func (t *rankTree) build(svc *Service, owner loadIndex) {
	t.svc = svc
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

// update re-ranks d from its leaf up.
func (t *rankTree) update(d *Dest) {
	j := t.leaves + d.pos
	if t.eligible(t.svc.Profile, d) {
		t.node[j] = d
	} else {
		t.node[j] = nil
	}
	for j /= 2; j >= 1; j /= 2 {
		t.node[j] = t.match(t.node[2*j], t.node[2*j+1])
	}
}

func (t *rankTree) match(left, right *Dest) *Dest {
	if left == nil || right != nil && t.better(t.svc.Profile, right, left) {
		return right
	}
	return left
}

func (t *rankTree) best() *Dest { return t.node[1] }

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

func (r *ranked) loadChanged(d *Dest)                  { r.rank.update(d) }
func (r *ranked) AddDest(svc *Service, _ *Dest)        { r.rank.build(svc, r) }
func (r *ranked) DelDest(svc *Service, _ *Dest, _ int) { r.rank.build(svc, r) }

// UpdDest has nothing left to do: Service.UpdDest has re-ranked d.
func (r *ranked) UpdDest(*Service, *Dest) {}

// eligibleUsable is the eligibility of lc, wlc, sed and nq.
func eligibleUsable(_ Profile, d *Dest) bool { return usable(d) }

// weightTree is a Fenwick tree over the usable weights in list order, so
// twos finds the dest a weighted draw lands on in O(log n). Its length is a
// power of two; the nodes past the list hold a sum no draw reaches, so the
// search needs no bounds test.
type weightTree struct {
	weight []int64 // per list position: the weight if usable, else 0
	fen    []int64 // 1-based Fenwick sums of weight
	total  int64
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
}

func (t *weightTree) update(d *Dest) { t.set(d.pos, usableWeight(d)) }

func (t *weightTree) set(pos int, w int64) {
	delta := w - t.weight[pos]
	if delta == 0 {
		return
	}
	t.weight[pos] = w
	t.total += delta
	for j := pos + 1; j < len(t.fen); j += j & -j {
		t.fen[j] += delta
	}
}

// find2 returns, for each of r1 and r2 (both ≥ 1), the list position of
// the first usable dest whose running weight sum reaches it: where the
// kernel's walk, subtracting each weight from the draw, first sees it ≤ 0.
// The two descents run side by side so their memory loads overlap.
func (t *weightTree) find2(r1, r2 int64) (int, int) {
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
