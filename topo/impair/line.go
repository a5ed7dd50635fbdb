package impair

import (
	"math/rand/v2"
	"time"

	"github.com/lvslab/lvslab/dataplane/header"
	"github.com/lvslab/lvslab/dataplane/packetio"
)

// Defaults of a delay line's bounds.
const (
	// DefaultLimit is netem's default limit: frames waiting per direction.
	DefaultLimit = 1000
	// DefaultBytes bounds the bytes waiting per direction: 16 MB holds a
	// 20 ms delay at 6 Gbit/s, more than a relay moves on veth.
	DefaultBytes = 16 << 20
)

// Config is what a delay line does to each frame.
type Config struct {
	Delay  time.Duration
	Jitter time.Duration // each frame waits Delay ± Jitter, uniformly
	// Reorder lets a frame leave before one that arrived earlier but drew
	// a longer delay, as netem does; by default a frame never overtakes.
	Reorder bool
	Limit   int    // frames waiting at most (DefaultLimit when 0)
	Bytes   int    // bytes waiting at most (DefaultBytes when 0)
	Seed    uint64 // the jitter's random source
}

func (c Config) limit() int {
	if c.Limit > 0 {
		return c.Limit
	}
	return DefaultLimit
}

func (c Config) bytes() int {
	if c.Bytes > 0 {
		return c.Bytes
	}
	return DefaultBytes
}

// LineStats counts what one direction of a delay line did.
type LineStats struct {
	Frames    uint64 `json:"frames"` // passed through
	Bytes     uint64 `json:"bytes"`
	Dropped   uint64 `json:"dropped"`    // the queue was full (Limit frames or Bytes bytes)
	MaxQueued int    `json:"max_queued"` // most frames waiting at once
	MaxFrame  int    `json:"max_frame"`  // largest frame passed (a GSO frame exceeds the MTU)
}

// Line is one direction of a link's delay: frames wait in a byte ring
// allocated once (no allocation per frame), each until its release time:
// its arrival plus Delay plus a uniform jitter in [-Jitter, +Jitter]. By
// default a frame never leaves before the frame ahead of it (its release
// time is raised to that frame's): the line does not reorder, where netem
// does when the jitter exceeds the gap between packets, and TCP sees
// spurious reordering. With Reorder, frames leave in release-time order (a
// heap of ring slots); the ring still frees bytes in arrival order, so a
// frame that overtook holds its bytes until the older ones have left too.
// Times are nanoseconds on any monotonic clock the caller passes in.
type Line struct {
	delay, jitter int64
	reorder       bool
	rng           *rand.Rand
	data          []byte
	w             int     // next write offset in data
	q             []entry // ring of frames in arrival order
	first, n      int     // the ring's oldest slot and its occupied slots
	waiting       int     // frames not yet released
	seq           uint64  // arrivals so far
	due           []int32 // Reorder: a min-heap of waiting slots by (at, seq)
	last          int64   // release time of the newest frame
	Stats         LineStats
}

type entry struct {
	off, len int
	at       int64
	seq      uint64
	gone     bool // released (Reorder: its bytes wait for older frames)
	vnet     [header.VirtioNetHdrSize]byte
}

// NewLine allocates a line for cfg; seed makes its jitter repeatable.
func NewLine(cfg Config, seed uint64) *Line {
	l := &Line{
		delay: int64(cfg.Delay), jitter: int64(cfg.Jitter), reorder: cfg.Reorder,
		rng:  rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		data: make([]byte, cfg.bytes()),
		q:    make([]entry, cfg.limit()),
	}
	if l.reorder {
		l.due = make([]int32, 0, cfg.limit())
	}
	return l
}

// Len is the number of frames waiting.
func (l *Line) Len() int { return l.waiting }

// room returns where a frame of size bytes fits in the byte ring, or -1.
// Occupied slots hold [r, w) or, wrapped, [r, end) and [0, w); a write
// position equal to r only ever means "empty", so a frame must leave a gap.
func (l *Line) room(size int) int {
	if l.n == 0 {
		l.w = 0
		if size <= len(l.data) {
			return 0
		}
		return -1
	}
	r := l.q[l.first].off
	if l.w >= r {
		if l.w+size <= len(l.data) {
			return l.w
		}
		if size < r {
			return 0
		}
		return -1
	}
	if l.w+size < r {
		return l.w
	}
	return -1
}

// Push queues a frame that arrived at now with its virtio_net_hdr, or
// drops it (counted) when the line is full.
func (l *Line) Push(frame []byte, vnet *[header.VirtioNetHdrSize]byte, now int64) bool {
	off := -1
	if l.n < len(l.q) {
		off = l.room(len(frame))
	}
	if off < 0 {
		l.Stats.Dropped++
		return false
	}
	at := now + l.delay
	if l.jitter > 0 {
		at += l.rng.Int64N(2*l.jitter+1) - l.jitter
	}
	at = max(at, now)
	if !l.reorder {
		at = max(at, l.last)
	}
	l.last = at
	copy(l.data[off:], frame)
	l.w = off + len(frame)
	slot := (l.first + l.n) % len(l.q)
	e := &l.q[slot]
	e.off, e.len, e.at, e.seq, e.gone, e.vnet = off, len(frame), at, l.seq, false, *vnet
	l.seq++
	l.n++
	l.waiting++
	if l.reorder {
		l.due = append(l.due, int32(slot))
		l.up(len(l.due) - 1)
	}
	l.Stats.MaxQueued = max(l.Stats.MaxQueued, l.waiting)
	return true
}

// next is the slot of the frame due first.
func (l *Line) next() int {
	if l.reorder {
		return int(l.due[0])
	}
	return l.first
}

// Next returns when the first waiting frame is due.
func (l *Line) Next() (int64, bool) {
	if l.waiting == 0 {
		return 0, false
	}
	return l.q[l.next()].at, true
}

// Release moves the frames due by now, up to len(out), into out and
// returns how many. Each out[i].Buf points into the line: send them before
// the next Push.
func (l *Line) Release(now int64, out []packetio.Packet) int {
	k := 0
	for k < len(out) && l.waiting > 0 {
		slot := l.next()
		e := &l.q[slot]
		if e.at > now {
			break
		}
		p := &out[k]
		p.Buf, p.Off, p.Len, p.Vnet = l.data[e.off:e.off+e.len], 0, e.len, e.vnet
		l.Stats.Frames++
		l.Stats.Bytes += uint64(e.len)
		l.Stats.MaxFrame = max(l.Stats.MaxFrame, e.len)
		e.gone = true
		l.waiting--
		if l.reorder {
			last := len(l.due) - 1
			l.due[0] = l.due[last]
			l.due = l.due[:last]
			l.down(0)
		}
		// Free the ring's oldest slots that have left.
		for l.n > 0 && l.q[l.first].gone {
			l.first = (l.first + 1) % len(l.q)
			l.n--
		}
		k++
	}
	return k
}

// Flush releases every waiting frame, due or not (the fault ends).
func (l *Line) Flush(out []packetio.Packet) int {
	return l.Release(int64(^uint64(0)>>1), out)
}

// before orders the heap: release time, then arrival.
func (l *Line) before(i, j int) bool {
	a, b := &l.q[l.due[i]], &l.q[l.due[j]]
	return a.at < b.at || (a.at == b.at && a.seq < b.seq)
}

func (l *Line) up(i int) {
	for i > 0 {
		parent := (i - 1) / 2
		if !l.before(i, parent) {
			return
		}
		l.due[i], l.due[parent] = l.due[parent], l.due[i]
		i = parent
	}
}

func (l *Line) down(i int) {
	for {
		least := i
		for _, c := range []int{2*i + 1, 2*i + 2} {
			if c < len(l.due) && l.before(c, least) {
				least = c
			}
		}
		if least == i {
			return
		}
		l.due[i], l.due[least] = l.due[least], l.due[i]
		i = least
	}
}
