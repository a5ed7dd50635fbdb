package scheduler

import "time"

func init() { registry["wlc"] = func(*Service) Scheduler { return WLC{} } }

// WLC is weighted least connection (ip_vs_wlc.c, §2.4), ipvsadm's default:
// the least overhead/weight, compared by cross-multiplication.
type WLC struct{}

func (WLC) Name() string { return "wlc" }

func (WLC) Schedule(svc *Service, _ Flow, _ time.Time) *Dest { return leastWeighted(svc) }
