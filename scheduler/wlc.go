package scheduler

func init() {
	registry["wlc"] = func(svc *Service) Scheduler {
		s := &WLC{}
		s.init(svc, "wlc", leastWeighted, eligibleUsable, func(p Profile, a, b *Dest) bool {
			return a.Overhead(p)*int64(b.Weight) < b.Overhead(p)*int64(a.Weight)
		})
		return s
	}
}

// WLC is weighted least connection (ip_vs_wlc.c, §2.4), ipvsadm's default:
// the least overhead/weight, compared by cross-multiplication.
type WLC struct{ ranked }
