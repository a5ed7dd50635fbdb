package scheduler

import (
	"math/bits"
	"time"
)

func init() {
	registry["mh"] = func(svc *Service) Scheduler {
		s := &MH{table: make([]*Dest, MHTableSize)}
		s.fill(svc)
		return s
	}
}

// MHTableSize is the Maglev table size M of the kernel's default
// CONFIG_IP_VS_MH_TAB_INDEX (12): primes[12 − 8].
const MHTableSize = 4093

// mhTabBits is IP_VS_MH_TAB_BITS, CONFIG_IP_VS_MH_TAB_INDEX / 2: weights are
// shifted down to at most this many bits.
const mhTabBits = 6

// The kernel's fixed hsiphash keys (generate_hash_secret).
var (
	mhKey1 = sipKey{2654435761, 2654435761}
	mhKey2 = sipKey{2654446892, 2654446892}
)

// MH is Maglev hashing (ip_vs_mh.c, §2.14). Each dest walks its own
// permutation of the M slots (offset and skip from two keyed hashes of its
// address and port) and claims slots in turns proportional to its last
// non-zero weight; the client's address (plus port with mh-port) hashes to a
// slot. With mh-fallback an unusable slot dest makes the lookup re-hash with
// growing offsets.
type MH struct {
	table []*Dest

	// scratch for fill, kept to avoid reallocating on every change
	setup []mhSetup
	taken []bool
}

type mhSetup struct {
	skip, perm uint32
	turns      int
}

func (*MH) Name() string { return "mh" }

func mhHash(a uint32, port uint16, k sipKey, offset uint32) uint32 {
	return hsiphash32(offset+uint32(port)+a, k)
}

// fill is ip_vs_mh_reassign: permutation, then population over the list.
func (s *MH) fill(svc *Service) {
	ds := svc.Dests
	m := uint32(len(s.table))
	if len(ds) > len(s.table) {
		return // EINVAL: the kernel keeps the old table
	}
	g, top := int32(0), int32(0)
	for _, d := range ds {
		if w := d.LastWeight; w > 0 {
			g = int32(gcd(int(w), int(g)))
			if w > top {
				top = w
			}
		}
	}
	if g < 1 {
		clear(s.table)
		return
	}
	rshift := max(bits.Len32(uint32(top/g))-mhTabBits, 0)

	s.setup = s.setup[:0]
	for _, d := range ds {
		a := fold(d.Addr)
		offset := mhHash(a, d.Port, mhKey1, 0) % m
		skip := mhHash(a, d.Port, mhKey2, 0)%(m-1) + 1
		turns := int((d.LastWeight / g) >> rshift)
		if turns == 0 && d.LastWeight != 0 {
			turns = 1
		}
		s.setup = append(s.setup, mhSetup{skip: skip, perm: offset, turns: turns})
	}

	if len(s.taken) != len(s.table) {
		s.taken = make([]bool, len(s.table))
	}
	clear(s.taken)
	n, claimed := 0, 0
	for {
		for j := 0; j < len(ds); {
			st := &s.setup[j]
			if st.turns < 1 {
				j++
				continue
			}
			for s.taken[st.perm] {
				if st.perm += st.skip; st.perm >= m {
					st.perm -= m
				}
			}
			s.taken[st.perm] = true
			s.table[st.perm] = ds[j]
			if n++; n == len(s.table) {
				return
			}
			if claimed++; claimed >= st.turns {
				claimed = 0
				j++
			}
		}
	}
}

func (s *MH) AddDest(svc *Service, _ *Dest)        { s.fill(svc) }
func (s *MH) DelDest(svc *Service, _ *Dest, _ int) { s.fill(svc) }
func (s *MH) UpdDest(svc *Service, _ *Dest)        { s.fill(svc) }

func (s *MH) Schedule(svc *Service, f Flow, _ time.Time) *Dest {
	var port uint16
	if svc.Flags&FlagSched2 != 0 { // mh-port
		port = flowPort(f)
	}
	m := uint32(len(s.table))
	a := fold(f.Src)
	ihash := mhHash(a, port, mhKey1, 0) % m
	d := s.table[ihash]
	if d == nil || usable(d) {
		return d
	}
	if svc.Flags&FlagSched1 == 0 { // no mh-fallback
		return nil
	}
	// Re-hash with offsets counted from the first slot: this is not probing.
	for offset := uint32(0); offset < m; offset++ {
		roffset := (offset + ihash) % m
		d := s.table[mhHash(a, port, mhKey1, roffset)%m]
		if d == nil {
			return nil
		}
		if usable(d) {
			return d
		}
	}
	return nil
}
