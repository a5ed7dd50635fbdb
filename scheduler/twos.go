package scheduler

import (
	"math/rand/v2"
	"time"
)

func init() {
	registry["twos"] = func(svc *Service) Scheduler {
		s := &Twos{fixed: rand.New(rand.NewPCG(0x6c76736c6162, 0x74776f73))}
		s.weights.build(svc, s)
		return s
	}
}

// Twos is power of two choices (ip_vs_twos.c, §2.9): two weighted random
// draws, and the one with the lower overhead/weight wins (the first on ties).
// The draws come from Service.Rand, or from a fixed-seed generator so runs
// repeat. Long lists find the dests a draw lands on through an index of the
// usable weights (weightTree) instead of the kernel's walk; both land on the
// same dest.
type Twos struct {
	fixed   *rand.Rand
	weights weightTree
}

func (*Twos) Name() string { return "twos" }

func (s *Twos) loadChanged(d *Dest)                  { s.weights.update(d) }
func (s *Twos) AddDest(svc *Service, _ *Dest)        { s.weights.build(svc, s) }
func (s *Twos) DelDest(svc *Service, _ *Dest, _ int) { s.weights.build(svc, s) }

// UpdDest has nothing left to do: Service.UpdDest has updated d's weight.
func (*Twos) UpdDest(*Service, *Dest) {}

func (s *Twos) Schedule(svc *Service, _ Flow, _ time.Time) *Dest {
	var total int64
	if len(svc.Dests) < scanCutoff {
		for _, d := range svc.Dests {
			total += usableWeight(d)
		}
	} else {
		total = s.weights.total
	}
	if total == 0 {
		return nil
	}
	// Both draws are uniform in [0, total]: a draw of 0 lands on the first
	// eligible dest, which therefore gets one chance more than its weight.
	r1, r2 := s.draw(svc, total), s.draw(svc, total)
	var c1, c2 *Dest
	if len(svc.Dests) < scanCutoff {
		c1, c2 = twosWalk(svc, r1, r2)
	} else {
		p1, p2 := s.weights.find2(max(r1, 1), max(r2, 1))
		c1, c2 = svc.Dests[p1], svc.Dests[p2]
	}
	p := svc.Profile
	if int64(c2.Weight)*c1.Overhead(p) > int64(c1.Weight)*c2.Overhead(p) {
		return c2
	}
	return c1
}

// twosWalk is the kernel's second loop: subtract each usable weight from both
// draws; each choice is the first dest at which its draw reaches 0.
func twosWalk(svc *Service, r1, r2 int64) (c1, c2 *Dest) {
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
	return c1, c2
}

// draw is rand32 % (total+1). Weights are at most 65535 each, so the sum
// nearly always fits 32 bits, where the division is much cheaper.
func (s *Twos) draw(svc *Service, total int64) int64 {
	var r uint32
	if svc.Rand != nil {
		r = svc.Rand()
	} else {
		r = s.fixed.Uint32()
	}
	if total < 1<<32-1 {
		return int64(r % uint32(total+1))
	}
	return int64(r) % (total + 1)
}
