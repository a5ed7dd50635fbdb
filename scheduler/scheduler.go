// Package scheduler implements the Linux IPVS schedulers — rr, wrr, lc, wlc,
// sed, nq, fo, ovf, twos, lblc, lblcr, dh, sh and mh — with the kernel's exact
// semantics (shared/spec/ipvs-semantics.md §1–§2): list order, eligibility,
// overhead, tie-breaking and the dest-change hooks.
//
// The package is pure: it does no I/O, reads no clock (time is an argument)
// and allocates nothing per pick. It owns no connection state; the director
// core (package dataplane) keeps the destination list and the counters and
// calls the hooks when the list changes.
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

// Service scheduler flags (IP_VS_SVC_F_SCHED1..3). Their names depend on the
// scheduler: SCHED1 is sh-fallback for sh, mh-fallback for mh, flag-1 otherwise.
const (
	FlagSched1 uint32 = 0x0008
	FlagSched2 uint32 = 0x0010
	FlagSched3 uint32 = 0x0020
)

// Tunables are the sysctls schedulers read at run time. The core owns the
// value and may change it while schedulers hold a pointer to it.
type Tunables struct {
	LBLCExpiration  time.Duration // net.ipv4.vs.lblc_expiration, default 24 h
	LBLCRExpiration time.Duration // net.ipv4.vs.lblcr_expiration, default 24 h
}

// DefaultTunables returns the kernel's defaults.
func DefaultTunables() *Tunables {
	return &Tunables{LBLCExpiration: 24 * time.Hour, LBLCRExpiration: 24 * time.Hour}
}

// Config is what a scheduler is bound with (init_service).
type Config struct {
	Flags    uint32        // FlagSched1..3
	Profile  Profile       // kernel bookkeeping rules
	Rand     func() uint32 // twos' random source; nil means a fixed-seed generator
	Tunables *Tunables     // nil means DefaultTunables
}

// Scheduler places new connections. dests is the service's destination list
// in kernel order: index 0 is the list head, the most recently added dest.
// Schedule returns nil when no destination is available.
type Scheduler interface {
	Name() string
	Schedule(dests []*Dest, f Flow, now time.Time) *Dest
}

// DestHooks is implemented by schedulers that keep state about the list
// (add_dest, del_dest, upd_dest). The core calls them after changing dests:
//   - AddDest: d has just been inserted at dests[0];
//   - DelDest: d has just been removed from index at (dests no longer holds it);
//   - UpdDest: d was edited in place (weight, thresholds, method).
//
// AddDest may refuse (mh with more dests than table slots gives EINVAL).
type DestHooks interface {
	AddDest(dests []*Dest, d *Dest) error
	DelDest(dests []*Dest, d *Dest, at int)
	UpdDest(dests []*Dest, d *Dest)
}

// Expirer is implemented by schedulers with caches that the kernel ages on a
// timer (lblc, lblcr: every 60 s). The core calls Expire from its own timer.
type Expirer interface {
	Expire(now time.Time)
}

// ErrUnknown is returned by New for a name that is not a scheduler; the
// kernel answers ENOENT ("Scheduler or persistence engine not found").
var ErrUnknown = errors.New("scheduler not found")

// Names lists every scheduler New knows, in ipvsadm's documentation order.
var Names = []string{"rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "fo", "ovf", "mh", "twos"}

// New binds scheduler name to a service whose current list is dests
// (init_service). Switching a populated service to another scheduler calls
// New with the full list, which differs from building it up with AddDest
// (wrr, §2.2).
func New(name string, cfg Config, dests []*Dest) (Scheduler, error) {
	if cfg.Tunables == nil {
		cfg.Tunables = DefaultTunables()
	}
	ctor, ok := registry[name]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknown, name)
	}
	return ctor(cfg, dests)
}

// registry maps names to constructors; each scheduler's file adds itself.
var registry = map[string]func(Config, []*Dest) (Scheduler, error){}

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
