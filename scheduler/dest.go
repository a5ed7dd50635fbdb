package scheduler

import "net/netip"

// DestFlags are the kernel's IP_VS_DEST_F_* bits.
type DestFlags uint32

const (
	// DestAvailable is set while the destination is linked in its service;
	// a deleted destination sitting in the trash lacks it.
	DestAvailable DestFlags = 0x0001
	// DestOverload is set by the threshold logic (§1.4); every scheduler
	// skips an overloaded destination.
	DestOverload DestFlags = 0x0002
)

// Profile selects which kernel's bookkeeping rules apply (spec §0.3).
type Profile uint8

const (
	// ProfileCurrent follows current kernels (the oracle 6.1.192): the
	// overhead is active×257+inactive and threshold edits recompute OVERLOAD.
	ProfileCurrent Profile = iota
	// Profile61Stock follows the unpatched 6.1 source: overhead
	// active×256+inactive, and an edit only ever clears OVERLOAD.
	Profile61Stock
)

// ParseProfile maps the names users write ("current", "6.1-stock") to a Profile.
func ParseProfile(name string) (Profile, bool) {
	switch name {
	case "", "current":
		return ProfileCurrent, true
	case "6.1-stock":
		return Profile61Stock, true
	}
	return 0, false
}

func (p Profile) String() string {
	if p == Profile61Stock {
		return "6.1-stock"
	}
	return "current"
}

// Dest is a destination (real server) of one virtual service, as the
// schedulers see it. The director core owns it and keeps the counters; the
// schedulers only read them. Identity is the pointer: a destination deleted
// and brought back from the trash is the same object.
type Dest struct {
	Addr netip.Addr
	Port uint16

	// Weight is the current weight; 0 means quiescent.
	Weight int32
	// LastWeight is the last non-zero weight, used only by mh: set on add
	// whatever the weight, and on edit only when the new weight is non-zero.
	LastWeight int32

	// UThreshold and LThreshold are -x and -y; 0 means unset.
	UThreshold, LThreshold uint32

	Flags DestFlags

	// ActiveConns and InactConns are what ipvsadm shows (ActiveConn,
	// InActConn); PersistConns counts persistence templates.
	ActiveConns, InactConns, PersistConns int32

	// index is the scheduler index that follows this dest's load while it is
	// listed (see rankTree); pos is its place in the list for that index.
	// Change the counters, weight and thresholds through the methods, or
	// call Service.UpdDest after writing the fields, so the index follows.
	index loadIndex
	pos   int
}

// loadIndex is implemented by schedulers that keep an index over their
// dests' weights and loads instead of scanning the list at every pick.
type loadIndex interface {
	loadChanged(d *Dest)
}

// changed tells the scheduler's index that d's load or eligibility moved.
func (d *Dest) changed() {
	if d.index != nil {
		d.index.loadChanged(d)
	}
}

// Available reports whether the destination is linked in a service.
func (d *Dest) Available() bool { return d.Flags&DestAvailable != 0 }

// Overloaded reports whether the threshold logic has marked the destination.
func (d *Dest) Overloaded() bool { return d.Flags&DestOverload != 0 }

// Overhead is the load measure of lc, wlc, lblc, lblcr and twos (§1.4).
func (d *Dest) Overhead(p Profile) int64 {
	o := int64(d.ActiveConns)<<8 + int64(d.InactConns)
	if p == ProfileCurrent {
		// "ipvs: add totalconns for dest": the kernel's inactconns field
		// holds the total, so active connections count once more.
		o += int64(d.ActiveConns)
	}
	return o
}

// total is the connection count the thresholds compare against; templates
// never count.
func (d *Dest) total() int64 { return int64(d.ActiveConns) + int64(d.InactConns) }

// lowMark is L of §1.4: LThreshold when set, else u − ⌊u/4⌋.
func (d *Dest) lowMark() int64 {
	if d.LThreshold != 0 {
		return int64(d.LThreshold)
	}
	u := int64(d.UThreshold)
	return u - u/4
}

// BindConn counts a new non-template connection, which starts inactive
// (ip_vs_bind_dest), and sets OVERLOAD when the total reaches the upper threshold.
func (d *Dest) BindConn() {
	d.InactConns++
	if d.UThreshold != 0 && d.total() >= int64(d.UThreshold) {
		d.Flags |= DestOverload
	}
	d.changed()
}

// UnbindConn uncounts an expiring non-template connection (ip_vs_unbind_dest)
// and clears OVERLOAD once the total falls below the low mark.
func (d *Dest) UnbindConn(active bool) {
	if active {
		d.ActiveConns--
	} else {
		d.InactConns--
	}
	switch {
	case d.UThreshold == 0 && d.LThreshold == 0:
		d.Flags &^= DestOverload
	case d.total() < d.lowMark():
		d.Flags &^= DestOverload
	}
	d.changed()
}

// SetActive moves a connection between ActiveConn and InActConn when its
// protocol state changes; OVERLOAD is not re-evaluated (§1.4).
func (d *Dest) SetActive(active bool) {
	if active {
		d.InactConns--
		d.ActiveConns++
	} else {
		d.ActiveConns--
		d.InactConns++
	}
	d.changed()
}

// BindTemplate and UnbindTemplate count persistence templates; they never
// touch OVERLOAD.
func (d *Dest) BindTemplate()   { d.PersistConns++ }
func (d *Dest) UnbindTemplate() { d.PersistConns-- }

// SetThresholds applies an edit of -x/-y (§1.3). Under ProfileCurrent a
// change of either threshold recomputes OVERLOAD from the current total;
// under Profile61Stock it is only cleared, when the new upper threshold is 0
// or larger than the old one.
func (d *Dest) SetThresholds(upper, lower uint32, p Profile) {
	oldU, oldL := d.UThreshold, d.LThreshold
	d.UThreshold, d.LThreshold = upper, lower
	if upper == oldU && lower == oldL {
		return
	}
	defer d.changed()
	if p == Profile61Stock {
		if upper == 0 || upper > oldU {
			d.Flags &^= DestOverload
		}
		return
	}
	switch {
	case upper == 0:
		d.Flags &^= DestOverload
	case d.total() >= int64(upper):
		d.Flags |= DestOverload
	case d.total() < d.lowMark():
		d.Flags &^= DestOverload
	}
}

// SetWeight applies a weight from ipvsadm -a (adding) or -e, keeping
// LastWeight as the kernel does.
func (d *Dest) SetWeight(w int32, adding bool) {
	d.Weight = w
	if adding || w != 0 {
		d.LastWeight = w
	}
	d.changed()
}
