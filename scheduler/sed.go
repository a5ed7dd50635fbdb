package scheduler

import "time"

func init() { registry["sed"] = func(*Service) Scheduler { return SED{} } }

// SED is shortest expected delay (ip_vs_sed.c, §2.5): wlc's structure with
// (active+1)/weight as the load; inactive connections do not count.
type SED struct{}

func (SED) Name() string { return "sed" }

func (SED) Schedule(svc *Service, _ Flow, _ time.Time) *Dest {
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
