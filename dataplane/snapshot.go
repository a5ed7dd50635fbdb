package dataplane

import (
	"net/netip"
	"time"
)

// ServiceInfo is a service as a listing sees it.
type ServiceInfo struct {
	Config    ServiceConfig
	Scheduler string // the bound scheduler, "none" if unbound
	Stats     Counters
	Rates     Rates
	Dests     []DestInfo // kernel list order: most recently added first
}

// DestInfo is a destination as a listing sees it.
type DestInfo struct {
	Config                                DestConfig
	ActiveConns, InactConns, PersistConns int32
	Overloaded                            bool
	Stats                                 Counters
	Rates                                 Rates
}

// Services lists the services in creation order (listings sort them).
func (d *Director) Services(now time.Time) []ServiceInfo {
	d.advance(now.UnixNano())
	out := make([]ServiceInfo, 0, len(d.svcOrder))
	for _, s := range d.svcOrder {
		out = append(out, s.info())
	}
	return out
}

// Service lists one service.
func (d *Director) Service(key ServiceKey, now time.Time) (ServiceInfo, bool) {
	d.advance(now.UnixNano())
	s, ok := d.svcs[key.normal()]
	if !ok {
		return ServiceInfo{}, false
	}
	return s.info(), true
}

func (s *Service) info() ServiceInfo {
	si := ServiceInfo{Config: s.cfg, Scheduler: s.SchedulerName(), Stats: s.stats.counters(), Rates: s.stats.rates()}
	si.Config.Flags = s.Flags
	for _, sd := range s.Dests {
		dest := s.dests[sd]
		dc := dest.cfg
		dc.Weight = dest.Weight
		si.Dests = append(si.Dests, DestInfo{
			Config:       dc,
			ActiveConns:  dest.ActiveConns,
			InactConns:   dest.InactConns,
			PersistConns: dest.PersistConns,
			Overloaded:   dest.Overloaded(),
			Stats:        dest.stats.counters(),
			Rates:        dest.stats.rates(),
		})
	}
	return si
}

// Total returns the director-wide counters and rates (/proc/net/ip_vs_stats).
func (d *Director) Total(now time.Time) (Counters, Rates) {
	d.advance(now.UnixNano())
	return d.total.counters(), d.total.rates()
}

// ConnInfo is one entry of the connection table (ipvsadm -L -c).
type ConnInfo struct {
	Proto    uint8 // ProtoIP for fwmark templates
	State    string
	Expires  time.Duration // until the timer fires
	Client   netip.AddrPort
	Virtual  netip.AddrPort
	Dest     netip.AddrPort
	Template bool
	Method   Method
}

// Conns lists the connection table, templates included, in table order.
func (d *Director) Conns(now time.Time) []ConnInfo {
	t := now.UnixNano()
	d.advance(t)
	var out []ConnInfo
	for _, b := range d.conns.buckets {
		for i := uint32(b); i != 0; {
			c := d.conns.at(i)
			out = append(out, ConnInfo{
				Proto:    c.proto,
				State:    stateName(c),
				Expires:  time.Duration(c.expires - t),
				Client:   netip.AddrPortFrom(addrFrom16(c.af, c.caddr), c.cport),
				Virtual:  netip.AddrPortFrom(addrFrom16(c.af, c.vaddr), c.vport),
				Dest:     netip.AddrPortFrom(addrFrom16(c.af, c.daddr), c.dport),
				Template: c.flags&connTemplate != 0,
				Method:   Method(c.flags & connFwdMask),
			})
			i = c.next
		}
	}
	return out
}

// ConnCount is the number of entries in the table.
func (d *Director) ConnCount() int { return d.conns.count }

// stateName is ip_vs_state_name.
func stateName(c *conn) string {
	if c.flags&connTemplate != 0 {
		if c.state&tplAssured != 0 {
			return "ASSURED"
		}
		return "NONE"
	}
	switch c.proto {
	case ProtoTCP:
		if int(c.state) < len(TCPStateNames) {
			return TCPStateNames[c.state]
		}
	case ProtoSCTP:
		if int(c.state) < len(SCTPStateNames) {
			return SCTPStateNames[c.state]
		}
	case ProtoUDP:
		return "UDP"
	default:
		return "NONE"
	}
	return "ERR!"
}
