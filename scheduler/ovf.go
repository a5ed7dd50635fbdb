package scheduler

import "time"

func init() { registry["ovf"] = func(*Service) Scheduler { return OVF{} } }

// OVF is weighted overflow (ip_vs_ovf.c, §2.8): the highest-weight usable
// dest whose active connections do not exceed its weight, so each dest fills
// up to weight+1 active connections before the next one takes over.
type OVF struct{}

func (OVF) Name() string { return "ovf" }

func (OVF) Schedule(svc *Service, _ Flow, _ time.Time) *Dest {
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
