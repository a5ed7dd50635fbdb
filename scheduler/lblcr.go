package scheduler

import (
	"slices"
	"time"
)

func init() {
	registry["lblcr"] = func(*Service) Scheduler { return &LBLCR{cache: newLocalityCache()} }
}

// LBLCR is locality-based least connection with replication (ip_vs_lblcr.c,
// §2.11): each destination address keeps a set of dests. The least loaded
// member serves unless it is far busier than some other dest; then wlc picks
// a dest for the whole service and it joins the set. A set that has not
// changed for lblcr_expiration sheds its most loaded member.
type LBLCR struct {
	cache *localityCache
}

func (*LBLCR) Name() string { return "lblcr" }

func (s *LBLCR) Schedule(svc *Service, f Flow, now time.Time) *Dest {
	en := s.cache.get(f.Dst)
	if en == nil {
		d := leastWeighted(svc)
		if d == nil {
			return nil
		}
		if en = s.cache.add(f.Dst, now); en != nil {
			en.set = append(en.set, d)
			en.lastmod = now
		}
		return d
	}
	en.lastuse = now
	d := setMin(svc, en.set)
	if len(en.set) > 1 && now.After(en.lastmod.Add(svc.tunables().LBLCRExpiration)) {
		// The member shed may be d itself; d is still used this time.
		if m := setMax(svc, en.set); m != nil {
			en.set = slices.DeleteFunc(en.set, func(x *Dest) bool { return x == m })
			en.lastmod = now
		}
	}
	if d != nil && !localityOverloaded(svc, d) {
		return d
	}
	d = leastWeighted(svc)
	if d == nil {
		return nil
	}
	if !slices.Contains(en.set, d) {
		en.set = slices.Insert(en.set, 0, d)
		en.lastmod = now
	}
	return d
}

// setMin is ip_vs_dest_set_min: the wlc choice among the set's members that
// are available and not OVERLOAD.
func setMin(svc *Service, set []*Dest) *Dest {
	p := svc.Profile
	i := 0
	for ; i < len(set); i++ {
		if d := set[i]; usable(d) && d.Available() {
			break
		}
	}
	if i == len(set) {
		return nil
	}
	least := set[i]
	loh := least.Overhead(p)
	for _, d := range set[i+1:] {
		if d.Flags&DestOverload != 0 {
			continue
		}
		doh := d.Overhead(p)
		if loh*int64(d.Weight) > doh*int64(least.Weight) && d.Available() {
			least, loh = d, doh
		}
	}
	return least
}

// setMax is ip_vs_dest_set_max: the member with the highest overhead/weight
// among those with weight, OVERLOAD or not; the first on ties.
func setMax(svc *Service, set []*Dest) *Dest {
	p := svc.Profile
	i := 0
	for ; i < len(set) && set[i].Weight <= 0; i++ {
	}
	if i == len(set) {
		return nil
	}
	most := set[i]
	moh := most.Overhead(p)
	for _, d := range set[i+1:] {
		doh := d.Overhead(p)
		if moh*int64(d.Weight) < doh*int64(most.Weight) && d.Weight > 0 {
			most, moh = d, doh
		}
	}
	return most
}

// Expire runs one 60 s garbage-collection tick against lblcr_expiration.
func (s *LBLCR) Expire(svc *Service, now time.Time) {
	s.cache.expire(now, svc.tunables().LBLCRExpiration)
}

// Holds reports whether the cache still references d (see Holder).
func (s *LBLCR) Holds(d *Dest) bool { return s.cache.holds(d) }
