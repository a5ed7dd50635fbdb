package scheduler

import "time"

func init() {
	registry["wrr"] = func(svc *Service) Scheduler {
		s := &WRR{}
		s.measure(svc)
		s.cw = s.mw
		return s
	}
}

// WRR is interleaved weighted round robin (ip_vs_wrr.c, §2.2). Pass after
// pass, cw steps down from mw by di and each pass takes, in list order, the
// dests whose weight reaches cw. Any change of the list or of a dest puts the
// cursor back to the head, so the history of -a/-e calls shapes the sequence.
type WRR struct {
	cl int // cursor: list index of the last choice, -1 for the head
	cw int // current weight
	mw int // max weight − (di − 1)
	di int // gcd of the positive weights, 1 if none
}

func (*WRR) Name() string { return "wrr" }

// measure recomputes di and mw and puts the cursor at the head.
func (s *WRR) measure(svc *Service) {
	g, top := 0, 0
	for _, d := range svc.Dests {
		w := int(d.Weight)
		if w > 0 {
			g = gcd(w, g)
		}
		if w > top {
			top = w
		}
	}
	if g == 0 {
		g = 1
	}
	s.cl, s.di, s.mw = -1, g, top-(g-1)
}

func (s *WRR) changed(svc *Service) {
	s.measure(svc)
	switch {
	case s.cw > s.mw || s.cw == 0:
		s.cw = s.mw
	case s.di > 1:
		s.cw = s.cw/s.di*s.di + 1
	}
}

func (s *WRR) AddDest(svc *Service, _ *Dest)        { s.changed(svc) }
func (s *WRR) DelDest(svc *Service, _ *Dest, _ int) { s.changed(svc) }
func (s *WRR) UpdDest(svc *Service, _ *Dest)        { s.changed(svc) }

func (s *WRR) Schedule(svc *Service, _ Flow, _ time.Time) *Dest {
	if s.mw == 0 {
		return nil
	}
	ds := svc.Dests
	last, stop := s.cl, -1
	lastPass, restarted := false, false
	i := s.cl
	for {
		for i++; i < len(ds); i++ {
			d := ds[i]
			if d.Flags&DestOverload == 0 && int(d.Weight) >= s.cw {
				s.cl = i
				return d
			}
			if i == stop {
				s.cl = i // all destinations are overloaded
				return nil
			}
		}
		i = -1
		s.cw -= s.di
		if s.cw <= 0 {
			s.cw = s.mw
			// The last pass (cw ≤ di) already covered every dest, or the
			// walk started at the head: nothing can match.
			if lastPass || last == -1 {
				s.cl = -1
				return nil
			}
			restarted = true
		}
		lastPass = s.cw <= s.di
		if lastPass && restarted && last != -1 {
			// The first walk covered only the dests after last; check the
			// ones up to last in this final pass.
			stop = last
		}
	}
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}
