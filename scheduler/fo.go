package scheduler

import "time"

func init() { registry["fo"] = func(*Service) Scheduler { return FO{} } }

// FO is weighted failover (ip_vs_fo.c, §2.7): the non-OVERLOAD dest with the
// highest weight, the first in list order on ties.
type FO struct{}

func (FO) Name() string { return "fo" }

func (FO) Schedule(svc *Service, _ Flow, _ time.Time) *Dest {
	var high *Dest
	var hw int32
	for _, d := range svc.Dests {
		if d.Flags&DestOverload == 0 && d.Weight > hw {
			high, hw = d, d.Weight
		}
	}
	return high
}
