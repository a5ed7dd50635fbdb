package scheduler

import "time"

func init() { registry["nq"] = func(*Service) Scheduler { return NQ{} } }

// NQ is never queue (ip_vs_nq.c, §2.6): the first usable dest with no active
// connection at once, otherwise the sed choice.
type NQ struct{}

func (NQ) Name() string { return "nq" }

func (NQ) Schedule(svc *Service, _ Flow, _ time.Time) *Dest {
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
