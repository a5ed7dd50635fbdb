package scheduler

// usable is the eligibility test most schedulers share (§2.0): a positive
// weight and no OVERLOAD.
func usable(d *Dest) bool { return d.Weight > 0 && d.Flags&DestOverload == 0 }

// leastWeighted is the wlc choice (§2.4), which lblc and lblcr also use on a
// cache miss: the first usable dest, then each later non-OVERLOAD dest that
// beats it by cross-multiplication (strict, so ties keep the earlier dest).
// A weight-0 dest never wins: x·0 > y·w is false.
func leastWeighted(svc *Service) *Dest {
	ds := svc.Dests
	p := svc.Profile
	i := 0
	for ; i < len(ds) && !usable(ds[i]); i++ {
	}
	if i == len(ds) {
		return nil
	}
	least := ds[i]
	loh := least.Overhead(p)
	for _, d := range ds[i+1:] {
		if d.Flags&DestOverload != 0 {
			continue
		}
		doh := d.Overhead(p)
		if loh*int64(d.Weight) > doh*int64(least.Weight) {
			least, loh = d, doh
		}
	}
	return least
}

// localityOverloaded is lblc's and lblcr's is_overloaded (§2.10): d has more
// active connections than its weight while some dest of the service is below
// half of its own.
func localityOverloaded(svc *Service, d *Dest) bool {
	if d.ActiveConns <= d.Weight {
		return false
	}
	for _, x := range svc.Dests {
		if int64(x.ActiveConns)*2 < int64(x.Weight) {
			return true
		}
	}
	return false
}
