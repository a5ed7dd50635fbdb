package scheduler

func init() {
	registry["nq"] = func(svc *Service) Scheduler {
		s := &NQ{}
		s.init(svc, "nq", nqWalk, eligibleUsable, func(p Profile, a, b *Dest) bool {
			// An idle dest beats a busy one; idle ones tie, so the first wins.
			if idleA, idleB := a.ActiveConns == 0, b.ActiveConns == 0; idleA || idleB {
				return idleA && !idleB
			}
			return sedBetter(p, a, b)
		})
		return s
	}
}

// NQ is never queue (ip_vs_nq.c, §2.6): the first usable dest with no active
// connection at once, otherwise the sed choice.
type NQ struct{ ranked }

func nqWalk(svc *Service) *Dest {
	var least *Dest
	var loh int64
	for _, d := range svc.Dests {
		if !usable(d) {
			continue
		}
		if d.ActiveConns == 0 {
			return d
		}
		doh := int64(d.ActiveConns) + 1
		if least == nil || loh*int64(d.Weight) > doh*int64(least.Weight) {
			least, loh = d, doh
		}
	}
	return least
}
