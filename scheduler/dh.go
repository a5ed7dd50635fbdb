package scheduler

import "time"

func init() {
	registry["dh"] = func(svc *Service) Scheduler {
		s := &DH{}
		s.fill(svc)
		return s
	}
}

// dhBits is IP_VS_DH_TAB_BITS: a 256-slot table.
const dhBits = 8

// DH is destination hashing (ip_vs_dh.c, §2.12): slot i of a 256-slot table
// holds list[i mod n] (weights play no part), and the packet's destination
// address picks the slot. An unusable slot dest means no destination.
type DH struct {
	table [1 << dhBits]*Dest
}

func (*DH) Name() string { return "dh" }

func (s *DH) fill(svc *Service) {
	n := len(svc.Dests)
	for i := range s.table {
		s.table[i] = nil
		if n > 0 {
			s.table[i] = svc.Dests[i%n]
		}
	}
}

func (s *DH) AddDest(svc *Service, _ *Dest)        { s.fill(svc) }
func (s *DH) DelDest(svc *Service, _ *Dest, _ int) { s.fill(svc) }

// UpdDest does nothing: the kernel has no upd_dest hook for dh, and weights
// do not shape its table.
func (*DH) UpdDest(*Service, *Dest) {}

func (s *DH) Schedule(_ *Service, f Flow, _ time.Time) *Dest {
	d := s.table[hash32(fold(f.Dst), dhBits)]
	if d == nil || !d.Available() || !usable(d) {
		return nil
	}
	return d
}
