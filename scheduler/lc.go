package scheduler

func init() {
	registry["lc"] = func(svc *Service) Scheduler {
		s := &LC{}
		s.init(svc, "lc", lcWalk, eligibleUsable, func(p Profile, a, b *Dest) bool {
			return a.Overhead(p) < b.Overhead(p)
		})
		return s
	}
}

// LC is least connection (ip_vs_lc.c, §2.3): the usable dest with the least
// overhead, the first in list order on ties. Positive weights do not matter.
type LC struct{ ranked }

func lcWalk(svc *Service) *Dest {
	var least *Dest
	var loh int64
	for _, d := range svc.Dests {
		if !usable(d) {
			continue
		}
		if doh := d.Overhead(svc.Profile); least == nil || doh < loh {
			least, loh = d, doh
		}
	}
	return least
}
