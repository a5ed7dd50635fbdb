package scheduler

import "time"

func init() { registry["rr"] = func(*Service) Scheduler { return &RR{cursor: -1} } }

// RR is round robin (ip_vs_rr.c, §2.1). The cursor is the list index of the
// last chosen dest, -1 for the list head; the walk starts after it and wraps,
// examining the cursor's own dest last. Weights other than 0 are ignored.
type RR struct {
	cursor int
}

func (*RR) Name() string { return "rr" }

func (s *RR) Schedule(svc *Service, _ Flow, _ time.Time) *Dest {
	n := len(svc.Dests)
	for k, i := 0, s.cursor+1; k < n; k, i = k+1, i+1 {
		if i == n {
			i = 0
		}
		if d := svc.Dests[i]; usable(d) {
			s.cursor = i
			return d
		}
	}
	return nil
}

// AddDest keeps the cursor on its dest: the new one sits at the head and is
// reached when the walk wraps (the kernel has no add_dest hook).
func (s *RR) AddDest(*Service, *Dest) {
	if s.cursor >= 0 {
		s.cursor++
	}
}

// DelDest moves a cursor on the removed dest to the one before it, so the
// next pick is the dest that followed the removed one.
func (s *RR) DelDest(_ *Service, _ *Dest, at int) {
	if s.cursor >= at {
		s.cursor--
	}
}

func (*RR) UpdDest(*Service, *Dest) {}
