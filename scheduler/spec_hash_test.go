package scheduler

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// hsiphashBytes is the kernel's 64-bit hsiphash over any input, written from
// lib/siphash.c to check hsiphash32 and the kernel's test vectors.
func hsiphashBytes(data []byte, k sipKey) uint32 {
	v0, v1, v2, v3 := sipInit(k)
	n := len(data)
	for ; len(data) >= 8; data = data[8:] {
		m := binary.LittleEndian.Uint64(data)
		v3 ^= m
		v0, v1, v2, v3 = sipRound(v0, v1, v2, v3)
		v0 ^= m
	}
	b := uint64(n) << 56
	for i, c := range data {
		b |= uint64(c) << (8 * i)
	}
	return sipFinal(v0, v1, v2, v3, b)
}

// The kernel's lib/test_siphash.c vectors for hsiphash on 64-bit kernels:
// key 00..0f, input 00, 01, … of length i.
var hsiphashVectors = [64]uint32{
	0x050fc4dc, 0x7d57ca93, 0x4dc7d44d, 0xe7ddf7fb, 0x88d38328, 0x49533b67, 0xc59f22a7, 0x9bb11140,
	0x8d299a8e, 0x6c063de4, 0x92ff097f, 0xf94dc352, 0x57b4d9a2, 0x1229ffa7, 0xc0f95d34, 0x2a519956,
	0x7d908b66, 0x63dbd80c, 0xb473e63e, 0x8d297d1c, 0xa6cce040, 0x2b45f844, 0xa320872e, 0xdae6c123,
	0x67349c8c, 0x705b0979, 0xca9913a5, 0x4ade3b35, 0xef6cd00d, 0x4ab1e1f4, 0x43c5e663, 0x8c21d1bc,
	0x16a7b60d, 0x7a8ff9bf, 0x1f2a753e, 0xbf186b91, 0xada26206, 0xa3c33057, 0xae3a36a1, 0x7b108392,
	0x99e41531, 0x3f1ad944, 0xc8138825, 0xc28949a6, 0xfaf8876b, 0x9f042196, 0x68b1d623, 0x8b5114fd,
	0xdf074c46, 0x12cc86b3, 0x0a52098f, 0x9d292f9a, 0xa2f41f12, 0x43a71ed0, 0x73f0bce6, 0x70a7e980,
	0x243c6d75, 0xfdb71513, 0xa67d8a08, 0xb7e8f148, 0xf7a644ee, 0x0f1837f2, 0x4b6694e0, 0xb7bbb3a8,
}

func TestHsiphashMatchesTheKernelTestVectors(t *testing.T) {
	key := sipKey{0x0706050403020100, 0x0f0e0d0c0b0a0908}
	in := make([]byte, 64)
	for i := range in {
		in[i] = byte(i)
	}
	for n, want := range hsiphashVectors {
		assert.Equal(t, want, hsiphashBytes(in[:n], key), "length %d", n)
	}
	assert.Equal(t, hsiphashVectors[4], hsiphash32(0x03020100, key), "the 4-byte fast path")
	for _, v := range []uint32{0, 1, 0x0a000051, 0xffffffff} {
		var b [4]byte
		binary.LittleEndian.PutUint32(b[:], v)
		assert.Equal(t, hsiphashBytes(b[:], key), hsiphash32(v, key))
	}
}

func TestAddressFoldAndBuckets(t *testing.T) {
	cases := []struct {
		name   string
		addr   string
		fold   uint32
		bucket uint32 // hash_32(fold, 8)
	}{
		{"fold/IPv4 is the address in host order", "10.0.0.100", 0x0a000064, 248},
		{"fold/dh VIP 10.0.0.101", "10.0.0.101", 0x0a000065, 90},
		{"fold/dh VIP 10.0.0.102", "10.0.0.102", 0x0a000066, 187},
		{"fold/dh VIP 10.0.0.103", "10.0.0.103", 0x0a000067, 29},
		{"fold/dh VIP 60.1.2.3", "60.1.2.3", 0x3c010203, 224},
		{"fold/dh VIP 45.9.8.7", "45.9.8.7", 0x2d090807, 36},
		{"fold/dh VIP 120.5.6.7", "120.5.6.7", 0x78050607, 71},
		{"fold/dh VIP 100.64.1.2", "100.64.1.2", 0x64400102, 217},
		{"fold/sh client 192.168.1.1", "192.168.1.1", 0xc0a80101, 136},
		{"fold/sh client 192.168.1.2", "192.168.1.2", 0xc0a80102, 234},
		{"fold/sh client 10.1.2.3", "10.1.2.3", 0x0a010203, 2},
		{"fold/sh client 203.0.113.9", "203.0.113.9", 0xcb007109, 64},
		{"fold/IPv6 XORs the four words", "fd00::100", 0xfd000100, 243},
		{"fold/IPv6 fd00::101", "fd00::101", 0xfd000101, 85},
		{"fold/IPv6 2001:db8:aa::7", "2001:db8:aa::7", 0x20ab0dbf, 180},
		{"fold/IPv6 fd12:3456:789a::1", "fd12:3456:789a::1", 0x85883457, 47},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := fold(netip.MustParseAddr(c.addr))
			assert.Equal(t, c.fold, f)
			assert.Equal(t, c.bucket, hash32(f, 8))
		})
	}
	assert.Equal(t, uint32(44), hash32(40000+0xc0a80101, 8), "sh-port: 192.168.1.1 port 40000")
}

func TestDestinationHashingSpecExample(t *testing.T) {
	b := newBench(t, "dh")
	for i := 1; i <= 5; i++ {
		b.add(fmt.Sprintf("10.1.0.%d:80", i), 1)
	}
	got := func(vips ...string) []string {
		var out []string
		for _, v := range vips {
			out = append(out, b.pick(toVIP(v), none))
		}
		return out
	}
	assert.Equal(t,
		[]string{"10.1.0.2:80", "10.1.0.5:80", "10.1.0.3:80", "10.1.0.1:80", "10.1.0.1:80", "10.1.0.4:80", "10.1.0.4:80", "10.1.0.3:80"},
		got("10.0.0.100", "10.0.0.101", "10.0.0.102", "10.0.0.103", "60.1.2.3", "45.9.8.7", "120.5.6.7", "100.64.1.2"))

	f := toVIP("10.0.0.100")
	f.Src = netip.MustParseAddr("10.2.0.2")
	assert.Equal(t, "10.1.0.2:80", b.pick(f, none), "every client gets the same dest for a VIP")

	b.del("10.1.0.3:80")
	assert.Equal(t, []string{"10.1.0.5:80", "10.1.0.2:80", "10.1.0.1:80", "10.1.0.4:80"},
		got("10.0.0.100", "10.0.0.101", "10.0.0.102", "10.0.0.103"), "deleting rebuilds over 4 dests")

	b.edit("10.1.0.5:80", 0, 0, 0)
	assert.Equal(t, []string{"-"}, got("10.0.0.100"), "a quiescent slot dest refuses: no fallback")
}

func TestDestinationHashingIPv6SpecExample(t *testing.T) {
	b := newBench(t, "dh")
	for _, a := range []string{"[fd00:1::1]:80", "[fd00:1::2]:80", "[fd00:1::3]:80"} {
		b.add(a, 1)
	}
	for vip, want := range map[string]string{
		"fd00::100": "[fd00:1::3]:80", "fd00::101": "[fd00:1::2]:80",
		"2001:db8:aa::7": "[fd00:1::3]:80", "fd12:3456:789a::1": "[fd00:1::1]:80",
	} {
		f := Flow{Proto: 6, Src: netip.MustParseAddr("fd00:2::1"), SrcPort: 10000, Dst: netip.MustParseAddr(vip), DstPort: 80}
		assert.Equal(t, want, b.pick(f, none), vip)
	}
}

func TestSourceHashingSpecExamples(t *testing.T) {
	// Each client's bucket b is pinned with A w=b, B w=1, C w=255−b in list
	// order: the client lands on B exactly when its bucket is b.
	pins := []struct {
		name   string
		client string
		bucket int32
		flags  uint32
	}{
		{"sh/192.168.1.1 hashes to bucket 136", "192.168.1.1", 136, 0},
		{"sh/192.168.1.2 hashes to bucket 234", "192.168.1.2", 234, 0},
		{"sh/10.1.2.3 hashes to bucket 2", "10.1.2.3", 2, 0},
		{"sh/203.0.113.9 hashes to bucket 64", "203.0.113.9", 64, 0},
		{"sh/with sh-port 192.168.1.1:40000 hashes to bucket 44", "192.168.1.1:40000", 44, FlagSched2},
		{"sh/without sh-port the source port is ignored", "192.168.1.1:40000", 136, 0},
	}
	for _, p := range pins {
		t.Run(p.name, func(t *testing.T) {
			b := newBench(t, "sh")
			b.svc.Flags = p.flags
			b.add("C", 255-p.bucket)
			b.add("B", 1)
			b.add("A", p.bucket)
			assert.Equal(t, "B", b.pick(client(p.client), none))
		})
	}

	t.Run("sh/list A(1), B(2), C(0) fills slots A B B C and refuses on C", func(t *testing.T) {
		b := newBench(t, "sh")
		b.add("C", 0)
		b.add("B", 2)
		b.add("A", 1)
		for i, want := range []string{"A", "B", "B", "C", "A", "B", "B", "C"} {
			assert.Equal(t, want, b.names[b.svc.sched.(*SH).table[i]], "slot %d", i)
		}
		var got []string
		for _, c := range []string{"192.168.1.1", "192.168.1.2", "192.168.2.1", "192.168.2.2", "192.168.2.3", "10.1.2.3"} {
			got = append(got, b.pick(client(c), none))
		}
		assert.Equal(t, []string{"A", "B", "B", "-", "A", "B"}, got)
	})

	t.Run("sh/sh-fallback probes from twice the bucket, one slot at a time", func(t *testing.T) {
		// Slots: P 0-15, X 16, Y 17-135, Q 136 (weight 0), R 137-255.
		b := newBench(t, "sh")
		b.svc.Flags = FlagSched1
		b.add("R", 119)
		b.add("Q", 0)
		b.add("Y", 119)
		b.add("X", 1)
		b.add("P", 16)
		c := client("192.168.1.1")
		assert.Equal(t, "X", b.pick(c, none), "probe 16")
		b.edit("X", 0, 0, 0)
		assert.Equal(t, "Y", b.pick(c, none), "X keeps its one slot: probe 17")
		b.edit("Y", 0, 0, 0)
		assert.Equal(t, "R", b.pick(c, none), "rebuilt: bucket 136 now holds R")
		b.svc.Flags = 0
		assert.Equal(t, "R", b.pick(c, none))
	})
}

func TestMaglevSpecExample(t *testing.T) {
	b := newBench(t, "mh")
	for _, a := range []string{"10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80"} {
		b.add(a, 1)
	}
	a1 := fold(netip.MustParseAddr("10.0.0.1"))
	assert.Equal(t, uint32(0x439c0cbe), mhHash(a1, 80, mhKey1, 0))
	assert.Equal(t, uint32(0x97b3dc47), mhHash(a1, 80, mhKey2, 0))
	for _, c := range []struct {
		dest         string
		offset, skip uint32
	}{{"10.0.0.3", 1631, 3453}, {"10.0.0.2", 1231, 3544}, {"10.0.0.1", 3167, 700}} {
		a := fold(netip.MustParseAddr(c.dest))
		assert.Equal(t, c.offset, mhHash(a, 80, mhKey1, 0)%MHTableSize, "offset of %s", c.dest)
		assert.Equal(t, c.skip, mhHash(a, 80, mhKey2, 0)%(MHTableSize-1)+1, "skip of %s", c.dest)
	}

	mh := b.svc.sched.(*MH)
	owners := func() map[string]int {
		n := map[string]int{}
		for _, d := range mh.table {
			n[b.names[d]]++
		}
		return n
	}
	assert.Equal(t, map[string]int{"10.0.0.3:80": 1365, "10.0.0.2:80": 1364, "10.0.0.1:80": 1364}, owners())

	lookups := map[string]struct {
		slot   uint32
		before string
		after  string
	}{
		"192.168.1.1":   {2456, "10.0.0.1:80", "10.0.0.1:80"},
		"192.168.1.2":   {811, "10.0.0.3:80", "10.0.0.3:80"},
		"192.168.1.3":   {3321, "10.0.0.2:80", "10.0.0.3:80"},
		"203.0.113.7":   {1705, "10.0.0.3:80", "10.0.0.3:80"},
		"198.51.2.21":   {272, "10.0.0.3:80", "10.0.0.1:80"},
		"198.51.14.207": {4015, "10.0.0.3:80", "10.0.0.1:80"},
		"198.51.31.132": {412, "10.0.0.1:80", "10.0.0.3:80"},
		"198.51.5.180":  {1265, "10.0.0.1:80", "10.0.0.3:80"},
	}
	before := append([]*Dest(nil), mh.table...)
	for c, l := range lookups {
		assert.Equal(t, l.slot, mhHash(fold(netip.MustParseAddr(c)), 0, mhKey1, 0)%MHTableSize, c)
		assert.Equal(t, l.before, b.pick(client(c), none), c)
	}

	b.del("10.0.0.2:80")
	assert.Equal(t, map[string]int{"10.0.0.3:80": 2047, "10.0.0.1:80": 2046}, owners())
	var moved []int
	for i, d := range mh.table {
		if before[i] != b.dests["10.0.0.2:80"] && before[i] != d {
			moved = append(moved, i)
		}
	}
	assert.Equal(t, []int{272, 412, 1265, 4015}, moved, "only four slots of .1 and .3 change owner")
	for c, l := range lookups {
		assert.Equal(t, l.after, b.pick(client(c), none), c)
	}
}

func TestMaglevWeightsAreShiftedToSixBits(t *testing.T) {
	b := newBench(t, "mh")
	b.add("A", 1000)
	b.add("B", 300)
	b.add("C", 1)
	var turns []int
	for _, s := range b.svc.sched.(*MH).setup {
		turns = append(turns, s.turns)
	}
	assert.Equal(t, []int{1, 18, 62}, turns, "list C, B, A: rshift 4")
}

func TestMaglevQuiescedDestKeepsItsSlots(t *testing.T) {
	b := newBench(t, "mh")
	addAll(b, 1, "A", "B", "C")
	before := append([]*Dest(nil), b.svc.sched.(*MH).table...)
	var victim Flow
	for i := range 256 {
		victim = client(netip.AddrFrom4([4]byte{192, 168, 7, byte(i)}).String())
		if b.pick(victim, none) == "B" {
			break
		}
	}
	b.edit("B", 0, 0, 0)
	require.Equal(t, before, b.svc.sched.(*MH).table, "last_weight keeps B's turns")
	assert.Equal(t, "-", b.pick(victim, none), "refused without mh-fallback")
	b.svc.Flags = FlagSched1
	assert.Contains(t, []string{"A", "C"}, b.pick(victim, none), "re-hashed with mh-fallback")
}
