package scheduler

func init() {
	registry["fo"] = func(svc *Service) Scheduler {
		s := &FO{}
		s.init(svc, "fo", foWalk, eligibleUsable, heavier)
		return s
	}
}

// FO is weighted failover (ip_vs_fo.c, §2.7): the non-OVERLOAD dest with the
// highest weight, the first in list order on ties.
type FO struct{ ranked }

func heavier(_ Profile, a, b *Dest) bool { return a.Weight > b.Weight }

func foWalk(svc *Service) *Dest {
	var high *Dest
	var hw int32
	for _, d := range svc.Dests {
		if d.Flags&DestOverload == 0 && d.Weight > hw {
			high, hw = d, d.Weight
		}
	}
	return high
}
