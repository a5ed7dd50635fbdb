package scheduler

func init() {
	registry["ovf"] = func(svc *Service) Scheduler {
		s := &OVF{}
		s.init(svc, "ovf", ovfWalk, func(_ Profile, d *Dest) bool {
			return usable(d) && d.ActiveConns <= d.Weight
		}, heavier)
		return s
	}
}

// OVF is weighted overflow (ip_vs_ovf.c, §2.8): the highest-weight usable
// dest whose active connections do not exceed its weight, so each dest fills
// up to weight+1 active connections before the next one takes over.
type OVF struct{ ranked }

func ovfWalk(svc *Service) *Dest {
	var high *Dest
	for _, d := range svc.Dests {
		if !usable(d) || d.ActiveConns > d.Weight {
			continue
		}
		if high == nil || d.Weight > high.Weight {
			high = d
		}
	}
	return high
}
