package scheduler

import "time"

func init() { registry["lc"] = func(*Service) Scheduler { return LC{} } }

// LC is least connection (ip_vs_lc.c, §2.3): the usable dest with the least
// overhead, the first in list order on ties. Positive weights do not matter.
type LC struct{}

func (LC) Name() string { return "lc" }

func (LC) Schedule(svc *Service, _ Flow, _ time.Time) *Dest {
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
