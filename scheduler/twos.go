package scheduler

import (
	"math/rand/v2"
	"time"
)

func init() {
	registry["twos"] = func(*Service) Scheduler {
		return &Twos{fixed: rand.New(rand.NewPCG(0x6c76736c6162, 0x74776f73))}
	}
}

// Twos is power of two choices (ip_vs_twos.c, §2.9): two weighted random
// draws, and the one with the lower overhead/weight wins (the first on ties).
// The draws come from Service.Rand, or from a fixed-seed generator so runs
// repeat.
type Twos struct {
	fixed *rand.Rand
}

func (*Twos) Name() string { return "twos" }

func (s *Twos) Schedule(svc *Service, _ Flow, _ time.Time) *Dest {
	var total int64
	for _, d := range svc.Dests {
		if usable(d) {
			total += int64(d.Weight)
		}
	}
	if total == 0 {
		return nil
	}
	// Both draws are uniform in [0, total]: a draw of 0 lands on the first
	// eligible dest, which therefore gets one chance more than its weight.
	r1 := int64(s.draw(svc)) % (total + 1)
	r2 := int64(s.draw(svc)) % (total + 1)
	var c1, c2 *Dest
	for _, d := range svc.Dests {
		if !usable(d) {
			continue
		}
		r1 -= int64(d.Weight)
		r2 -= int64(d.Weight)
		if r1 <= 0 && c1 == nil {
			c1 = d
		}
		if r2 <= 0 && c2 == nil {
			c2 = d
		}
		if c1 != nil && c2 != nil {
			break
		}
	}
	p := svc.Profile
	if int64(c2.Weight)*c1.Overhead(p) > int64(c1.Weight)*c2.Overhead(p) {
		return c2
	}
	return c1
}

func (s *Twos) draw(svc *Service) uint32 {
	if svc.Rand != nil {
		return svc.Rand()
	}
	return s.fixed.Uint32()
}
