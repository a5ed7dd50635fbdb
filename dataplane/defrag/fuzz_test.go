package defrag

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// FuzzReassembly feeds pieces of one datagram, chosen by the input, in the
// input's order. A partition of the datagram, in any order and with exact
// duplicates, must come out whole exactly once; arbitrary pieces
// (overlapping, misplaced last fragments) must never panic, and whatever
// comes out must be the datagram's own bytes. Nothing stays charged after
// the timeout.
func FuzzReassembly(f *testing.F) {
	f.Add([]byte{0, 20, 3, 1, 2, 0, 0, 1, 2})
	f.Add([]byte{1, 10, 0, 0, 20, 0, 10, 30, 1, 0, 40, 128})
	f.Add([]byte{0, 200, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0})
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) < 2 {
			return
		}
		free := in[0]&1 == 1
		size := 8 + 8*int(in[1])*8 // payload of the IP packet: 8..16328 bytes
		d := datagram(size - 8)
		ops := in[2:]
		var ps []piece
		if free {
			for i := 0; i+2 < len(ops); i += 3 {
				off := 8 * (int(ops[i]) * size / 8 / 256)
				end := min(off+8*int(ops[i+1]&0x7f)+int(ops[i+2]&7), size)
				ps = append(ps, piece{off: off, end: end, last: ops[i+1]&0x80 != 0 || end == size})
			}
		} else {
			ps = partition(size, ops)
			if ps[0].off == 0 && ps[0].last {
				return // one piece is no fragment
			}
		}
		tb := New(Config{Queues: 2, Headroom: 20})
		var got [][]byte
		for _, pc := range ps {
			fr := frag(d, pc)
			if g, ok := tb.Add(fr, 14, len(fr)-14, t0); ok {
				got = append(got, append([]byte(nil), g.Frame()...))
			}
		}
		for _, g := range got {
			require.Equal(t, d[34:len(g)], g[34:], "the datagram's own bytes")
		}
		if !free {
			require.Len(t, got, 1, "a partition comes out whole once")
			require.Equal(t, d, got[0])
		}
		tb.Expire(t0.Add(time.Hour), func([]byte, int) {})
		require.Zero(t, tb.Mem())
	})
}

// partition cuts size bytes into pieces of 8·k bytes (k from the input),
// shuffles them by the input and repeats some exactly (in front).
func partition(size int, in []byte) []piece {
	var ps []piece
	i := 0
	for off := 0; off < size; i++ {
		k := 1
		if i < len(in) {
			k += int(in[i] & 0x3f)
		}
		end := min(off+8*k, size)
		ps = append(ps, piece{off: off, end: end, last: end == size})
		off = end
	}
	for j := range ps {
		if i+j < len(in) {
			o := int(in[i+j]) % len(ps)
			ps[j], ps[o] = ps[o], ps[j]
		}
	}
	var dups []piece                                        // ahead of the rest: a copy after the whole would start a new datagram
	for j := 1; j < len(ps) && i+len(ps)+j < len(in); j++ { // never all: ps[0] is not repeated
		if in[i+len(ps)+j]&3 == 0 {
			dups = append(dups, ps[j])
		}
	}
	return append(dups, ps...)
}
