// Package scheduler implements the Linux IPVS schedulers — rr, wrr, lc, wlc,
// sed, nq, fo, ovf, twos, lblc, lblcr, dh, sh and mh — with the kernel's exact
// semantics (shared/spec/ipvs-semantics.md §1–§2): list order, eligibility,
// overhead, tie-breaking and the dest-change hooks.
//
// The package is pure: it does no I/O, reads no clock (time is an argument)
// and allocates nothing per pick. It owns no connection state: the director
// core (package dataplane) embeds a Service per virtual service, changes its
// list through Service's methods (so the hooks run) and keeps each Dest's
// counters with Dest's methods (so OVERLOAD follows §1.4, and the load
// indexes that lc, wlc, sed, nq, fo, ovf and twos keep for long lists stay
// current; after writing a Dest's fields directly, call Service.UpdDest).
package scheduler

import (
	"errors"
	"fmt"
	"net/netip"
	"time"
)

// Flow is what a scheduler may look at in the first packet of a connection.
type Flow struct {
	Proto   uint8 // IP protocol number (6 TCP, 17 UDP, 132 SCTP)
	Src     netip.Addr
	SrcPort uint16
	Dst     netip.Addr
	DstPort uint16
}

// Service flags (IP_VS_SVC_F_*). SCHED1..3 are named by the scheduler:
// SCHED1 is sh-fallback for sh, mh-fallback for mh, flag-1 otherwise.
const (
	FlagPersistent uint32 = 0x0001
	FlagOnePacket  uint32 = 0x0004
	FlagSched1     uint32 = 0x0008
	FlagSched2     uint32 = 0x0010
	FlagSched3     uint32 = 0x0020
)

// Tunables are the sysctls schedulers read at run time. The core owns the
// value and may change it while services hold a pointer to it.
type Tunables struct {
	LBLCExpiration  time.Duration // net.ipv4.vs.lblc_expiration, default 24 h
	LBLCRExpiration time.Duration // net.ipv4.vs.lblcr_expiration, default 24 h
}

// DefaultTunables returns the kernel's defaults.
func DefaultTunables() *Tunables {
	return &Tunables{LBLCExpiration: 24 * time.Hour, LBLCRExpiration: 24 * time.Hour}
}

// Scheduler places new connections of one service. Schedule returns nil when
// no destination is available. Implementations read svc live: its list, its
// flags (sh-port and the like take effect at the next pick) and its tunables.
type Scheduler interface {
	Name() string
	Schedule(svc *Service, f Flow, now time.Time) *Dest
}

// DestHooks is implemented by schedulers that keep state about the list
// (add_dest, del_dest, upd_dest). Service calls them after changing the list:
//   - AddDest: d has just been inserted at svc.Dests[0];
//   - DelDest: d has just been removed from index at (svc.Dests no longer holds it);
//   - UpdDest: d was edited in place (weight, thresholds, method).
type DestHooks interface {
	AddDest(svc *Service, d *Dest)
	DelDest(svc *Service, d *Dest, at int)
	UpdDest(svc *Service, d *Dest)
}

// Expirer is implemented by schedulers with caches that the kernel ages on a
// timer (lblc, lblcr: every 60 s). The core calls Service.Expire from its timer.
type Expirer interface {
	Expire(svc *Service, now time.Time)
}

// Holder is implemented by schedulers whose state references dests beyond
// the list (lblc and lblcr caches). The kernel frees a deleted dest from the
// trash only once nothing references it, so while a cache entry names it, an
// ipvsadm -a of the same address brings back the same object.
type Holder interface {
	Holds(d *Dest) bool
}

// Holds reports whether the bound scheduler still references d; the core's
// trash asks before freeing a deleted dest.
func (s *Service) Holds(d *Dest) bool {
	h, ok := s.sched.(Holder)
	return ok && h.Holds(d)
}

// ErrUnknown is returned for a name that is not a scheduler; the kernel
// answers ENOENT ("Scheduler or persistence engine not found").
var ErrUnknown = errors.New("scheduler not found")

// Names lists every scheduler, in ipvsadm's documentation order.
var Names = []string{"rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "fo", "ovf", "mh", "twos"}

// registry maps names to constructors (init_service); each scheduler's file
// adds itself. A constructor sees the service's current list.
var registry = map[string]func(svc *Service) Scheduler{}

// Service is the part of a virtual service that its scheduler sees: the
// destination list in kernel order (index 0 is the list head, the most
// recently added dest), the service flags and the bookkeeping profile. The
// director core embeds one per virtual service and changes the list only
// through its methods, so the scheduler's hooks always run.
type Service struct {
	Dests    []*Dest
	Flags    uint32        // service flags; FlagSched1..3 are read by sh and mh
	Profile  Profile       // kernel bookkeeping rules; set before SetScheduler (the load indexes order by it)
	Tunables *Tunables     // nil means DefaultTunables
	Rand     func() uint32 // twos' random source; nil means a fixed-seed generator

	sched Scheduler
}

// SetScheduler binds the named scheduler ("none" unbinds, so every new
// connection fails). Binding the name already bound keeps the scheduler and
// its state, as ipvsadm -E does (§1.1); another name starts fresh with the
// current list, which differs from building the list with AddDest (wrr, §2.2).
func (s *Service) SetScheduler(name string) error {
	if s.sched != nil && s.sched.Name() == name {
		return nil
	}
	if name == "none" {
		for _, d := range s.Dests {
			d.index = nil
		}
		s.sched = nil
		return nil
	}
	ctor, ok := registry[name]
	if !ok {
		return fmt.Errorf("%w: %q", ErrUnknown, name)
	}
	if s.Tunables == nil {
		s.Tunables = DefaultTunables()
	}
	for _, d := range s.Dests {
		d.index = nil // the old scheduler's index goes with it
	}
	s.sched = ctor(s)
	return nil
}

// SchedulerName is the bound scheduler's name, or "none".
func (s *Service) SchedulerName() string {
	if s.sched == nil {
		return "none"
	}
	return s.sched.Name()
}

// AddDest inserts d at the head of the list, marks it available and runs the
// scheduler's add_dest hook.
func (s *Service) AddDest(d *Dest) {
	s.Dests = append(s.Dests, nil)
	copy(s.Dests[1:], s.Dests)
	s.Dests[0] = d
	d.Flags |= DestAvailable
	if h, ok := s.sched.(DestHooks); ok {
		h.AddDest(s, d)
	}
}

// DelDest unlinks d, clears its availability and runs the del_dest hook. It
// reports whether d was in the list.
func (s *Service) DelDest(d *Dest) bool {
	for i, x := range s.Dests {
		if x != d {
			continue
		}
		s.Dests = append(s.Dests[:i], s.Dests[i+1:]...)
		d.Flags &^= DestAvailable
		d.index = nil
		if h, ok := s.sched.(DestHooks); ok {
			h.DelDest(s, d, i)
		}
		return true
	}
	return false
}

// UpdDest runs the upd_dest hook after d was edited in place, and brings
// the scheduler's load index up to date with d's fields.
func (s *Service) UpdDest(d *Dest) {
	d.changed()
	if h, ok := s.sched.(DestHooks); ok {
		h.UpdDest(s, d)
	}
}

// Schedule picks the destination for a new connection, or nil.
func (s *Service) Schedule(f Flow, now time.Time) *Dest {
	if s.sched == nil {
		return nil
	}
	return s.sched.Schedule(s, f, now)
}

// Expire ages the scheduler's caches; the core calls it every 60 s.
func (s *Service) Expire(now time.Time) {
	if e, ok := s.sched.(Expirer); ok {
		e.Expire(s, now)
	}
}

// FlagNames returns the ipvsadm names of the scheduler flags in flags for
// scheduler name, in ipvsadm's order ("sh-fallback,sh-port").
func FlagNames(name string, flags uint32) []string {
	var out []string
	switch name {
	case "sh", "mh":
		if flags&FlagSched1 != 0 {
			out = append(out, name+"-fallback")
		}
		if flags&FlagSched2 != 0 {
			out = append(out, name+"-port")
		}
		if flags&FlagSched3 != 0 {
			out = append(out, "flag-3")
		}
	default:
		for i, f := range []uint32{FlagSched1, FlagSched2, FlagSched3} {
			if flags&f != 0 {
				out = append(out, fmt.Sprintf("flag-%d", i+1))
			}
		}
	}
	return out
}
