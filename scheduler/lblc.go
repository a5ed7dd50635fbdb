package scheduler

import "time"

func init() { registry["lblc"] = func(*Service) Scheduler { return &LBLC{cache: newLocalityCache()} } }

// LBLC is locality-based least connection (ip_vs_lblc.c, §2.10): each
// destination address of the packets keeps the dest chosen for it while that
// dest is available, has weight, and is not far busier than some other dest;
// otherwise wlc chooses again and the cache follows. The cache hit does not
// check OVERLOAD.
type LBLC struct {
	cache *localityCache
}

func (*LBLC) Name() string { return "lblc" }

func (s *LBLC) Schedule(svc *Service, f Flow, now time.Time) *Dest {
	en := s.cache.get(f.Dst)
	if en != nil {
		en.lastuse = now
		if d := en.dest; d.Available() && d.Weight > 0 && !localityOverloaded(svc, d) {
			return d
		}
	}
	d := leastWeighted(svc)
	if d == nil {
		return nil
	}
	if en == nil {
		en = s.cache.add(f.Dst, now)
	}
	if en != nil {
		en.dest = d
	}
	return d
}

// Expire runs one 60 s garbage-collection tick against lblc_expiration.
func (s *LBLC) Expire(svc *Service, now time.Time) {
	s.cache.expire(now, svc.tunables().LBLCExpiration)
}

// Holds reports whether the cache still references d (see Holder).
func (s *LBLC) Holds(d *Dest) bool { return s.cache.holds(d) }
