package defrag

import (
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lvslab/lvslab/dataplane/header"
	ht "github.com/lvslab/lvslab/dataplane/header/headertest"
)

var (
	cip = netip.MustParseAddr("10.0.0.1")
	vip = netip.MustParseAddr("192.168.0.100")
	t0  = time.Unix(1000, 0)
)

// datagram returns a UDP datagram frame with a payload of n bytes that
// differ from one another in every 8-byte piece.
func datagram(n int) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(i*7 + i/251)
	}
	f := ht.UDP(ht.Spec{Src: cip, Dst: vip, SrcPort: 5353, DstPort: 53, Payload: p})
	return f[:header.EthernetSize+int(header.IPv4(f[header.EthernetSize:]).TotalLength())] // no link padding
}

// piece is a fragment of a datagram: payload bytes [off, end) of its IP
// packet, with MF unless last.
type piece struct {
	off, end int
	last     bool
	df       bool
	tos      uint8
}

// frag builds the fragment's frame from the datagram frame d.
func frag(d []byte, pc piece) []byte {
	const l3 = header.EthernetSize
	ip := header.IPv4(d[l3:])
	hl := ip.HeaderLength()
	data := d[l3+hl : l3+int(ip.TotalLength())]
	f := make([]byte, 0, l3+hl+pc.end-pc.off)
	f = append(f, d[:l3+hl]...)
	f = append(f, data[pc.off:pc.end]...)
	h := header.IPv4(f[l3:])
	ff := uint16(pc.off / 8)
	if !pc.last {
		ff |= header.IPv4FlagMF
	}
	if pc.df {
		ff |= header.IPv4FlagDF
	}
	h.SetFlagsFragmentOffset(ff)
	h.SetTOS(pc.tos)
	h.SetTotalLength(uint16(len(f) - l3))
	h.SetChecksum(0)
	h.SetChecksum(h.CalculateChecksum())
	return f
}

// split cuts a payload of n bytes into pieces of size (a multiple of 8).
func split(n, size int) []piece {
	var ps []piece
	for off := 0; off < n; off += size {
		ps = append(ps, piece{off: off, end: min(off+size, n), last: off+size >= n})
	}
	return ps
}

// feed adds the pieces in order, returning the datagrams completed.
func feed(t *testing.T, tb *Table, d []byte, ps []piece, now time.Time) [][]byte {
	t.Helper()
	var out [][]byte
	for _, pc := range ps {
		f := frag(d, pc)
		if g, ok := tb.Add(f, header.EthernetSize, len(f)-header.EthernetSize, now); ok {
			out = append(out, append([]byte(nil), g.Frame()...))
		}
	}
	return out
}

func reversed(ps []piece) []piece {
	r := make([]piece, len(ps))
	for i, p := range ps {
		r[len(ps)-1-i] = p
	}
	return r
}

func TestReassembly(t *testing.T) {
	d := datagram(4000) // 4008 bytes of UDP
	whole := split(4008, 1480)
	tests := []struct {
		name   string
		pieces []piece
		ok     bool
		want   Reason // the counter that moves when not ok
	}{
		{"in order it is whole", whole, true, 0},
		{"in reverse it is whole", reversed(whole), true, 0},
		{"a duplicate fragment is dropped alone", append(append(whole[:1:1], whole[0]), whole[1:]...), true, Duplicate},
		{"a duplicate of the middle part of a run is dropped alone",
			[]piece{{off: 0, end: 2000}, {off: 8, end: 800}, {off: 2000, end: 4008, last: true}}, true, Duplicate},
		{"an overlapping fragment discards the queue",
			[]piece{{off: 0, end: 1480}, {off: 1472, end: 2960}, {off: 2960, end: 4008, last: true}}, false, Overlap},
		{"an overlap before the tail discards the queue",
			[]piece{{off: 2960, end: 4008, last: true}, {off: 0, end: 1480}, {off: 1000, end: 2000}}, false, Overlap},
		{"a fragment across two runs is an overlap, not a duplicate",
			[]piece{{off: 0, end: 8}, {off: 16, end: 24}, {off: 8, end: 16}, {off: 0, end: 16}, {off: 24, end: 4008, last: true}}, false, Overlap},
		{"two last fragments with different ends discard the queue",
			[]piece{{off: 2960, end: 4008, last: true}, {off: 2960, end: 4000, last: true}}, false, BadLength},
		{"a last fragment short of what is held discards the queue",
			[]piece{{off: 0, end: 2960}, {off: 1480, end: 2000, last: true}}, false, BadLength},
		{"a fragment past the last one's end discards the queue",
			[]piece{{off: 1480, end: 2000, last: true}, {off: 0, end: 2960}}, false, BadLength},
		{"a non-last fragment of less than 8 bytes is empty and discards the queue",
			[]piece{{off: 0, end: 1480}, {off: 1480, end: 1484}}, false, BadLength},
		{"a non-last fragment's odd tail is cut to 8 bytes",
			[]piece{{off: 0, end: 1484}, {off: 1480, end: 4008, last: true}}, true, 0},
		{"a missing fragment leaves the datagram incomplete", []piece{whole[0], whole[2]}, false, Reassembled},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tb := New(Config{Headroom: 64})
			got := feed(t, tb, d, tc.pieces, t0)
			c := tb.Counters()
			assert.Equal(t, uint64(len(tc.pieces)), c[Requests])
			if !tc.ok {
				assert.Empty(t, got)
				if tc.want != Reassembled {
					assert.Equal(t, uint64(1), c[tc.want])
				}
				return
			}
			require.Len(t, got, 1)
			assert.Equal(t, uint64(1), c[Reassembled])
			if tc.want != 0 {
				assert.Equal(t, uint64(1), c[tc.want])
			}
			assert.Equal(t, d, got[0], "the datagram as it was sent, header included")
			assert.Zero(t, tb.Mem(), "nothing held after reassembly")
		})
	}
}

func TestReassembledHeader(t *testing.T) {
	d := datagram(3000)
	tb := New(Config{})
	ps := split(3008, 1480)
	for i := range ps {
		ps[i].df = i == 0 // the largest fragment has DF
		ps[i].tos = 0x2 | 0x10
	}
	ps[1].tos = 0x3 | 0x10 // CE on one, ECT(0) on the rest
	got := feed(t, tb, d, ps, t0)
	require.Len(t, got, 1)
	ip := header.IPv4(got[0][header.EthernetSize:])
	assert.True(t, ip.IsChecksumValid())
	assert.Equal(t, uint16(3028), ip.TotalLength())
	assert.Equal(t, header.IPv4FlagDF, ip.FlagsFragmentOffset(), "DF when the largest fragment had it, offset 0, no MF")
	assert.Equal(t, uint8(0x13), ip.TOS(), "CE among ECT fragments marks the datagram")
	assert.Equal(t, uint16(0x1234), ip.ID())

	ps[0].df, ps[1].tos = false, 0x10 // not-ECT among ECT(0): no datagram
	assert.Empty(t, feed(t, tb, d, ps, t0))
	assert.Equal(t, uint64(1), tb.Counters()[BadECN])
}

func TestMaxFragSize(t *testing.T) {
	d := datagram(3000)
	tb := New(Config{})
	var g Datagram
	for _, pc := range []piece{{off: 0, end: 1000}, {off: 1000, end: 3008, last: true}} {
		f := frag(d, pc)
		var ok bool
		g, ok = tb.Add(f, 14, len(f)-14, t0)
		_ = ok
	}
	assert.Equal(t, 2028, g.MaxFragSize, "the largest fragment's IP length")
	assert.Equal(t, 14, g.L3Off)
	assert.GreaterOrEqual(t, g.Off, 0)
	assert.False(t, header.IPv4(g.Frame()[14:]).DF(), "no DF: the largest fragment had none")
}

func TestOversize(t *testing.T) {
	d := datagram(100)
	tb := New(Config{})
	f := frag(d, piece{off: 0, end: 16, last: false})
	header.IPv4(f[14:]).SetFlagsFragmentOffset(header.IPv4FlagMF | 8190) // payload up to 65536
	_, ok := tb.Add(f, 14, len(f)-14, t0)
	assert.False(t, ok)
	assert.Equal(t, uint64(1), tb.Counters()[Oversize])
}

func TestExpiry(t *testing.T) {
	d := datagram(4000)
	tb := New(Config{Queues: 2})
	ps := split(4008, 1480)
	assert.Empty(t, feed(t, tb, d, ps[:2], t0))
	var firsts [][]byte
	quote := func(f []byte, l3 int) { firsts = append(firsts, append([]byte(nil), f...)) }
	tb.Expire(t0.Add(29*time.Second), quote)
	assert.Zero(t, tb.Counters()[Timeout], "ipfrag_time is 30 s")
	assert.Empty(t, feed(t, tb, d, ps[2:], t0.Add(31*time.Second)), "the rest comes too late: a new queue")
	tb.Expire(t0.Add(31*time.Second), quote)
	assert.Equal(t, uint64(1), tb.Counters()[Timeout])
	require.Len(t, firsts, 1, "the queue with the first fragment is quoted")
	assert.Equal(t, frag(d, ps[0]), firsts[0])
	tb.Expire(t0.Add(62*time.Second), quote)
	assert.Equal(t, uint64(2), tb.Counters()[Timeout])
	assert.Len(t, firsts, 1, "the later queue had no first fragment")
	assert.Zero(t, tb.Mem())
}

func TestLimits(t *testing.T) {
	d := datagram(4000)
	ps := split(4008, 1480)
	t.Run("every queue in use", func(t *testing.T) {
		tb := New(Config{Queues: 1})
		feed(t, tb, d, ps[:1], t0)
		other := append([]byte(nil), d...)
		header.IPv4(other[14:]).SetID(7)
		assert.Empty(t, feed(t, tb, other, ps, t0))
		assert.Equal(t, uint64(3), tb.Counters()[NoMemory])
	})
	t.Run("over the high threshold every fragment is refused", func(t *testing.T) {
		tb := New(Config{HighThresh: 3000})
		assert.Empty(t, feed(t, tb, d, ps, t0), "two fragments charge more than 3000 bytes")
		assert.Equal(t, uint64(1), tb.Counters()[NoMemory], "even the queue's own fragments")
		tb.Expire(t0.Add(time.Minute), nil)
		small := datagram(2000)
		assert.Len(t, feed(t, tb, small, split(2008, 1480), t0.Add(time.Minute)), 1, "room again after the timeout")
	})
	t.Run("the key is source, destination, protocol and id", func(t *testing.T) {
		tb := New(Config{})
		other := append([]byte(nil), d...)
		header.IPv4(other[14:]).SetProtocol(header.ProtocolTCP)
		fixChecksum(other)
		assert.Empty(t, feed(t, tb, d, ps[:2], t0))
		assert.Empty(t, feed(t, tb, other, ps[2:], t0))
		assert.Len(t, feed(t, tb, d, ps[2:], t0), 1)
	})
}

func fixChecksum(f []byte) {
	ip := header.IPv4(f[14:])
	ip.SetChecksum(0)
	ip.SetChecksum(ip.CalculateChecksum())
}

func TestOptionsOfTheFirstFragment(t *testing.T) {
	d := datagram(2000)
	// Put a 4-byte option (no-ops then end) into the header.
	withOpt := append(append(append([]byte(nil), d[:34]...), 1, 1, 1, 0), d[34:]...)
	ip := header.IPv4(withOpt[14:])
	withOpt[14] = 0x46
	ip.SetTotalLength(ip.TotalLength() + 4)
	fixChecksum(withOpt)
	tb := New(Config{})
	got := feed(t, tb, withOpt, split(2008, 1000), t0)
	require.Len(t, got, 1)
	assert.Equal(t, withOpt, got[0])
}

func BenchmarkReassemble(b *testing.B) {
	d := datagram(4000)
	var frames [][]byte
	for _, pc := range split(4008, 1480) {
		frames = append(frames, frag(d, pc))
	}
	tb := New(Config{Headroom: 64})
	b.ReportAllocs()
	b.SetBytes(int64(len(d)))
	for i := 0; b.Loop(); i++ {
		for _, f := range frames {
			header.IPv4(f[14:]).SetID(uint16(i)) // checksum no longer matters here
			tb.Add(f, 14, len(f)-14, t0)
		}
	}
	if tb.Counters()[Reassembled] == 0 {
		b.Fatal("nothing reassembled")
	}
}

// TestMaxDist is ip_frag_too_far: a queue holding fragments that sees more
// than ipfrag_max_dist (64) fragments from its source go by between two of
// its own starts over; fragments from other sources do not count.
func TestMaxDist(t *testing.T) {
	x := datagram(4000)
	y := append([]byte(nil), x...)
	header.IPv4(y[14:]).SetID(9)
	fixChecksum(y)
	z := append([]byte(nil), y...) // another source
	header.IPv4(z[14:]).SetSource(netip.MustParseAddr("10.0.0.2"))
	fixChecksum(z)
	ps := split(4008, 1480)
	between := func(d []byte, n int) []piece {
		r := make([]piece, n)
		for i := range r {
			r[i] = ps[0] // the first one queues, the rest are duplicates
		}
		return r
	}
	for _, tc := range []struct {
		name  string
		other []byte
		n     int
		whole bool
	}{
		{"63 of the source's fragments in between are within the distance", y, 63, true},
		{"64 start the queue over (64 + its own > 64)", y, 64, false},
		{"another source's fragments do not count", z, 200, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tb := New(Config{})
			feed(t, tb, x, ps[:1], t0)
			feed(t, tb, tc.other, between(tc.other, tc.n), t0)
			got := feed(t, tb, x, ps[1:], t0)
			if tc.whole {
				assert.Len(t, got, 1)
				assert.Zero(t, tb.Counters()[TooFar])
				return
			}
			assert.Empty(t, got, "the first fragment was dropped with the restart")
			assert.Equal(t, uint64(1), tb.Counters()[TooFar])
			assert.Len(t, feed(t, tb, x, ps[:1], t0), 1, "the first fragment again completes the new queue")
		})
	}
	tb := New(Config{MaxDist: -1})
	feed(t, tb, x, ps[:1], t0)
	feed(t, tb, y, between(y, 500), t0)
	assert.Len(t, feed(t, tb, x, ps[1:], t0), 1, "no limit")
}
