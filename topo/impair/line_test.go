package impair

import (
	"bytes"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lvslab/lvslab/dataplane/header"
	"github.com/lvslab/lvslab/dataplane/packetio"
)

const ms = int64(time.Millisecond)

func frame(i, size int) []byte {
	return bytes.Repeat([]byte{byte(i)}, size)
}

func TestLineHoldsEachFrameForTheDelay(t *testing.T) {
	l := NewLine(Config{Delay: 20 * time.Millisecond}, 1)
	var vnet [header.VirtioNetHdrSize]byte
	vnet[0] = header.VirtioNetHdrFNeedsCsum
	require.True(t, l.Push(frame(1, 100), &vnet, 0))
	require.True(t, l.Push(frame(2, 65000), &vnet, 5*ms))
	out := make([]packetio.Packet, 8)

	assert.Zero(t, l.Release(20*ms-1, out), "not before its delay")
	next, ok := l.Next()
	require.True(t, ok)
	assert.Equal(t, 20*ms, next)
	require.Equal(t, 1, l.Release(20*ms, out))
	assert.Equal(t, frame(1, 100), out[0].Frame())
	assert.Equal(t, vnet, out[0].Vnet, "the offload metadata travels with the frame")

	require.Equal(t, 1, l.Release(time.Hour.Nanoseconds(), out))
	assert.Equal(t, frame(2, 65000), out[0].Frame(), "a 64 KB GSO frame passes whole")
	assert.Equal(t, LineStats{Frames: 2, Bytes: 65100, MaxQueued: 2, MaxFrame: 65000}, l.Stats)
	_, ok = l.Next()
	assert.False(t, ok)
}

func TestLineJitterIsBoundedSeededAndNeverReorders(t *testing.T) {
	cfg := Config{Delay: 20 * time.Millisecond, Jitter: 5 * time.Millisecond}
	run := func(seed uint64) []int64 {
		l := NewLine(cfg, seed)
		var vnet [header.VirtioNetHdrSize]byte
		var due []int64
		out := make([]packetio.Packet, 1)
		for i := range 2000 {
			now := int64(i) * 11 * ms // wider apart than the jitter's span: order never binds
			require.True(t, l.Push(frame(i, 64), &vnet, now))
			for l.Len() > 0 {
				at, _ := l.Next()
				require.Equal(t, 1, l.Release(at, out))
				require.Equal(t, byte(len(due)), out[0].Frame()[0], "frames leave in arrival order")
				due = append(due, at-now)
			}
		}
		return due
	}
	a := run(7)
	assert.Equal(t, a, run(7), "the same seed gives the same delays")
	assert.NotEqual(t, a, run(8))
	lo, hi := a[0], a[0]
	for _, d := range a {
		lo, hi = min(lo, d), max(hi, d)
		assert.GreaterOrEqual(t, d, 15*ms)
		assert.LessOrEqual(t, d, 25*ms)
	}
	assert.Less(t, lo, 16*ms, "the jitter reaches down")
	assert.Greater(t, hi, 24*ms, "the jitter reaches up")
}

// TestLineKeepsOrderWhenJitterWouldReorder: a frame whose own delay would
// have it leave before the one ahead of it waits for that one.
func TestLineKeepsOrderWhenJitterWouldReorder(t *testing.T) {
	l := NewLine(Config{Delay: 20 * time.Millisecond, Jitter: 10 * time.Millisecond}, 3)
	var vnet [header.VirtioNetHdrSize]byte
	var prev int64
	for i := range 500 {
		require.True(t, l.Push(frame(i, 60), &vnet, int64(i)*ms/10))
	}
	out := make([]packetio.Packet, 1)
	for i := range 500 {
		at, ok := l.Next()
		require.True(t, ok)
		assert.GreaterOrEqual(t, at, prev)
		prev = at
		require.Equal(t, 1, l.Release(at, out))
		assert.Equal(t, byte(i), out[0].Frame()[0])
	}
}

// TestLineReordersWhenAsked: with Reorder each frame waits exactly its
// own draw, so a frame that drew less overtakes, and every frame arrives
// intact and once, the ring wrapping under them.
func TestLineReordersWhenAsked(t *testing.T) {
	const delay, jitter = 20 * ms, 5 * ms
	l := NewLine(Config{Delay: time.Duration(delay), Jitter: time.Duration(jitter), Reorder: true, Bytes: 64 << 10}, 9)
	var vnet [header.VirtioNetHdrSize]byte
	arrived := map[byte]int64{}
	seen := map[byte]bool{}
	out := make([]packetio.Packet, 7)
	overtaken, prev := 0, -1
	now := int64(0)
	check := func(n int) {
		for _, p := range out[:n] {
			f := p.Frame()
			i := f[0]
			require.False(t, seen[i], "frame %d once", i)
			seen[i] = true
			for _, b := range f {
				require.Equal(t, i, b, "frame %d intact", i)
			}
			waited := now - arrived[i]
			assert.GreaterOrEqual(t, waited, delay-jitter)
			assert.LessOrEqual(t, waited, delay+jitter+ms/10, "released within a step of its time")
			if int(i) < prev {
				overtaken++
			}
			prev = int(i)
		}
	}
	for i := range 250 {
		now += ms / 10
		check(l.Release(now, out))
		require.True(t, l.Push(frame(i, 60+i), &vnet, now), "frame %d fits", i)
		arrived[byte(i)] = now
	}
	for l.Len() > 0 {
		now += ms / 10
		check(l.Release(now, out))
	}
	assert.Len(t, seen, 250)
	assert.Positive(t, overtaken, "frames overtook")
	assert.Equal(t, uint64(250), l.Stats.Frames)
}

func TestLineDropsWhenFull(t *testing.T) {
	var vnet [header.VirtioNetHdrSize]byte
	t.Run("the frame limit, as netem's", func(t *testing.T) {
		l := NewLine(Config{Delay: time.Second, Limit: 3}, 1)
		for i := range 5 {
			l.Push(frame(i, 60), &vnet, 0)
		}
		assert.Equal(t, 3, l.Len())
		assert.Equal(t, uint64(2), l.Stats.Dropped)
	})
	t.Run("the byte bound, with the ring wrapping", func(t *testing.T) {
		l := NewLine(Config{Delay: 10 * time.Millisecond, Bytes: 1000}, 1)
		out := make([]packetio.Packet, 4)
		now := int64(0)
		sent := 0
		// 300-byte frames: three fit, two when the free space is split
		// at the ring's end; the ring wraps every few frames.
		for i := range 100 {
			now += 4 * ms
			sent += l.Release(now, out)
			if l.Push(frame(i, 300), &vnet, now) {
				continue
			}
			assert.GreaterOrEqual(t, l.Len(), 2, "drops only when the ring is full")
		}
		sent += l.Flush(out)
		assert.Equal(t, 100, sent+int(l.Stats.Dropped))
		assert.Equal(t, uint64(sent), l.Stats.Frames)
		assert.Positive(t, sent)
	})
	t.Run("frames never overlap in the ring", func(t *testing.T) {
		l := NewLine(Config{Delay: 10 * time.Millisecond, Bytes: 4096}, 1)
		out := make([]packetio.Packet, 64)
		now := int64(0)
		var want []byte
		for i := range 3000 {
			now += ms / 2
			for _, p := range out[:l.Release(now, out)] {
				require.Equal(t, want[0], p.Frame()[0])
				for _, b := range p.Frame() {
					require.Equal(t, want[0], b, "frame %d intact", want[0])
				}
				want = want[1:]
			}
			if l.Push(frame(i, 97+i%700), &vnet, now) {
				want = append(want, byte(i))
			}
		}
		assert.Positive(t, l.Stats.Dropped)
		assert.Positive(t, l.Stats.Frames)
	})
}
