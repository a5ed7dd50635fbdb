package scheduler

func init() {
	registry["sed"] = func(svc *Service) Scheduler {
		s := &SED{}
		s.init(svc, "sed", sedWalk, eligibleUsable, sedBetter)
		return s
	}
}

// SED is shortest expected delay (ip_vs_sed.c, §2.5): wlc's structure with
// (active+1)/weight as the load; inactive connections do not count.
type SED struct{ ranked }

func sedBetter(_ Profile, a, b *Dest) bool {
	return (int64(a.ActiveConns)+1)*int64(b.Weight) < (int64(b.ActiveConns)+1)*int64(a.Weight)
}

func sedWalk(svc *Service) *Dest {
	ds := svc.Dests
	i := 0
	for ; i < len(ds) && !usable(ds[i]); i++ {
	}
	if i == len(ds) {
		return nil
	}
	least := ds[i]
	loh := int64(least.ActiveConns) + 1
	for _, d := range ds[i+1:] {
		if d.Flags&DestOverload != 0 {
			continue
		}
		doh := int64(d.ActiveConns) + 1
		if loh*int64(d.Weight) > doh*int64(least.Weight) {
			least, loh = d, doh
		}
	}
	return least
}
