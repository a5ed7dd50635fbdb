package scheduler

import "time"

func init() {
	registry["sh"] = func(svc *Service) Scheduler {
		s := &SH{}
		s.fill(svc)
		return s
	}
}

// shBits is CONFIG_IP_VS_SH_TAB_BITS at its default: a 256-slot table.
const shBits = 8

// SH is source hashing (ip_vs_sh.c, §2.13). The 256-slot table is filled by
// walking the list circularly, each dest taking max(weight, 1) consecutive
// slots; the client's address (plus its port with sh-port) picks the slot.
// With sh-fallback an unusable slot dest sends the lookup on through the
// table instead of refusing the connection.
type SH struct {
	table [1 << shBits]*Dest
}

func (*SH) Name() string { return "sh" }

func (s *SH) fill(svc *Service) {
	ds := svc.Dests
	if len(ds) == 0 {
		clear(s.table[:])
		return
	}
	p, taken := 0, int32(0)
	for i := range s.table {
		d := ds[p]
		s.table[i] = d
		// A weight-0 dest still takes one slot per round.
		if taken++; taken >= d.Weight {
			p, taken = (p+1)%len(ds), 0
		}
	}
}

func (s *SH) AddDest(svc *Service, _ *Dest)        { s.fill(svc) }
func (s *SH) DelDest(svc *Service, _ *Dest, _ int) { s.fill(svc) }
func (s *SH) UpdDest(svc *Service, _ *Dest)        { s.fill(svc) }

func (s *SH) Schedule(svc *Service, f Flow, _ time.Time) *Dest {
	var port uint16
	if svc.Flags&FlagSched2 != 0 { // sh-port
		port = flowPort(f)
	}
	const mask = 1<<shBits - 1
	ihash := hash32(uint32(port)+fold(f.Src), shBits)
	d := s.table[ihash]
	if d == nil || usable(d) {
		return d
	}
	if svc.Flags&FlagSched1 == 0 { // no sh-fallback
		return nil
	}
	// Probe roffset = offset+ihash, slot roffset+ihash: from 2·ihash on,
	// one slot at a time.
	for offset := uint32(0); offset <= mask; offset++ {
		roffset := (offset + ihash) & mask
		d := s.table[(roffset+ihash)&mask]
		if d == nil {
			return nil
		}
		if usable(d) {
			return d
		}
	}
	return nil
}
