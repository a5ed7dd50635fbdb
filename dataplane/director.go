// Package dataplane is the director core: virtual services, destinations
// with the trash, the connection table with protocol states and timers,
// persistence templates, one-packet scheduling, thresholds, statistics and
// the rate estimator — the kernel IPVS of shared/spec/ipvs-semantics.md,
// without packets. It calls the schedulers of package scheduler and keeps
// their counters through scheduler.Dest's methods.
//
// Everything runs on a virtual clock: every call takes now, and timers
// (connection expiry, the estimator, the trash sweep, lblc aging) fire in
// time order inside the call that passes them. Callers turn traffic into
// In and Out calls (the packet dataplane from real packets, replay from a
// script) and ipvsadm commands into the control methods.
//
// A Director is not safe for concurrent use.
package dataplane

import (
	"net/netip"
	"time"
	"unsafe"

	"github.com/lvslab/lvslab/scheduler"
)

// Dest is a destination (real server) of one service. Its scheduler view,
// the embedded scheduler.Dest, is what the schedulers see and where the
// connection counters live.
type Dest struct {
	scheduler.Dest
	cfg   DestConfig
	id    uint32   // index in Director.dests; conns refer to it
	svc   *Service // the service object it is (or was last) bound to
	key   ServiceKey
	refs  int32 // connections and templates bound to it
	stats stats

	inTrash   bool
	idleStart int64 // trash: when it was first seen unreferenced; 0 = not yet
}

// Service is a virtual service. Its scheduler view, the embedded
// scheduler.Service, holds the destination list in kernel order.
type Service struct {
	scheduler.Service
	cfg   ServiceConfig
	dests map[*scheduler.Dest]*Dest
	stats stats

	nextExpire int64 // lblc/lblcr cache aging, every 60 s
}

// Sysctls are the net.ipv4.vs.* settings the core reads (§6.2).
type Sysctls struct {
	ExpireNodestConn        bool
	ExpireQuiescentTemplate bool
	ConnReuseMode           int
	SloppyTCP               bool
	SloppySCTP              bool
	SecureTCP               int // 0, 1 (automatic, off) or 3 (on): the secure state table
	DropPacket              int // 0..3; 3 drops one in AmDropRate new connections
	AmDropRate              int
	CacheBypass             bool
	NATICMPSend             bool
	RunEstimation           bool
}

func defaultSysctls() Sysctls {
	return Sysctls{ConnReuseMode: 1, AmDropRate: 10, RunEstimation: true}
}

// Periods of the director's own timers.
const (
	estimatorPeriod    = 2 * time.Second
	trashPeriod        = 60 * time.Second  // IP_VS_DEST_TRASH_PERIOD / 2
	trashIdle          = 120 * time.Second // IP_VS_DEST_TRASH_PERIOD
	schedExpirePeriod  = 60 * time.Second
	templateRearm      = 60 * time.Second
	newConnTimeout     = 3 * time.Second
	defaultPersistence = 360 * time.Second
)

// ConnTabSize is what ipvsadm prints as (size=N): 2^conn_tab_bits.
const ConnTabSize = 4096

// Director is one director's IPVS state.
type Director struct {
	profile  scheduler.Profile
	sys      Sysctls
	tunables *scheduler.Tunables

	tcpTimeouts  [tcpStates]uint32 // ms
	udpTimeout   uint32            // ms
	sctpTimeouts [sctpStates]uint32

	svcs     map[ServiceKey]*Service
	svcOrder []*Service // creation order
	// lastKey and lastSvc remember the last service lookupService found by
	// its exact key: packets come in runs to one service, and the map
	// lookup is a hash of the whole key. lastSvc is nil when svcs changes.
	lastKey ServiceKey
	lastSvc *Service
	nFWM    [2]int // fwmark services per family (IPv4, IPv6)
	nPort0  int
	nFTP    int

	dests     []*Dest // by id; nil slots are free
	freeDests []uint32
	trash     []*Dest

	conns  connTable
	timers timers
	total  stats

	now       int64 // last time seen (ns)
	nextEst   int64
	nextTrash int64 // 0: trash timer not armed
	nextSvc   int64 // earliest Service.nextExpire; 0 if none
	estIdle   bool  // the last estimator tick found nothing to do
	dropCount int
}

// New returns an empty director whose clock starts at now.
func New(profile scheduler.Profile, now time.Time) *Director {
	t := now.UnixNano()
	d := &Director{
		profile:  profile,
		sys:      defaultSysctls(),
		tunables: scheduler.DefaultTunables(),
		svcs:     map[ServiceKey]*Service{},
		conns:    newConnTable(uint64(t) | 1),
		now:      t,
		nextEst:  t + int64(estimatorPeriod),
	}
	for i, s := range defaultTCPTimeouts {
		d.tcpTimeouts[i] = s * 1000
	}
	for i, s := range defaultSCTPTimeouts {
		d.sctpTimeouts[i] = s * 1000
	}
	d.udpTimeout = 300 * 1000
	return d
}

// Profile is the kernel bookkeeping profile the director follows.
func (d *Director) Profile() scheduler.Profile { return d.profile }

// Sysctls returns the current settings.
func (d *Director) Sysctls() Sysctls { return d.sys }

// Advance runs every timer due up to now: connection expiry, the
// estimator, the trash sweep and scheduler cache aging, in time order.
func (d *Director) Advance(now time.Time) { d.advance(now.UnixNano()) }

func (d *Director) advance(t int64) {
	if t < d.nextEst && (d.nextTrash == 0 || t < d.nextTrash) && (d.nextSvc == 0 || t < d.nextSvc) &&
		!d.timers.due(t) {
		d.now = max(d.now, t) // nothing due: the common case of a packet
		return
	}
	for {
		next := d.nextEst
		if d.nextTrash != 0 && d.nextTrash < next {
			next = d.nextTrash
		}
		if d.timers.n > 0 && d.timers.next < next {
			next = d.timers.next
		}
		if d.nextSvc != 0 && d.nextSvc < next {
			next = d.nextSvc
		}
		if next > t {
			break
		}
		if next > d.now {
			d.now = next
		}
		switch {
		case d.timers.n > 0 && d.timers.next == next:
			d.fireTimer(d.timers.pop())
			d.prefetchExpiry()
		case d.nextSvc == next:
			d.expireSchedulers(next)
		case d.nextTrash == next:
			d.sweepTrash(next)
		default:
			d.estimate()
			d.nextEst += int64(estimatorPeriod)
			if d.estIdle {
				// Nothing moves until the next event: skip the idle ticks.
				due := t
				if d.nextTrash != 0 {
					due = min(due, d.nextTrash)
				}
				if d.nextSvc != 0 {
					due = min(due, d.nextSvc)
				}
				if d.timers.n > 0 {
					due = min(due, d.timers.next)
				}
				if skip := (due - d.nextEst) / int64(estimatorPeriod); skip > 0 {
					d.nextEst += skip * int64(estimatorPeriod)
				}
			}
		}
	}
	if t > d.now {
		d.now = t
	}
}

// expireSchedulers runs the 60 s cache aging of the services due at t.
func (d *Director) expireSchedulers(t int64) {
	for _, s := range d.svcOrder {
		if s.nextExpire == t {
			s.nextExpire += int64(schedExpirePeriod)
			s.Expire(time.Unix(0, t))
		}
	}
	d.updateNextSvc()
}

func (d *Director) updateNextSvc() {
	d.nextSvc = 0
	for _, s := range d.svcOrder {
		if s.nextExpire != 0 && (d.nextSvc == 0 || s.nextExpire < d.nextSvc) {
			d.nextSvc = s.nextExpire
		}
	}
}

// estimate is one tick of the estimator over every stats object. It notes
// whether every object is idle (no new traffic, rates at 0), when further
// ticks would change nothing.
func (d *Director) estimate() {
	if !d.sys.RunEstimation {
		d.estIdle = true
		return
	}
	idle := d.total.fold()
	for _, s := range d.svcOrder {
		idle = s.stats.fold() && idle
		for _, sd := range s.Dests {
			idle = s.dests[sd].stats.fold() && idle
		}
	}
	d.estIdle = idle
}

// NextEstimate is when the estimator next folds the counters; a listing
// taken at or after it shows all traffic before it.
func (d *Director) NextEstimate() time.Time { return time.Unix(0, d.nextEst) }

// arm sets the conn's timer to fire timeout after t.
func (d *Director) arm(i uint32, t int64) {
	c := d.conns.at(i)
	c.expires = t + int64(c.timeout)*int64(time.Millisecond)
	if c.armed == 0 || c.expires < c.armed {
		c.armed = c.expires
		d.timers.push(timerEntry{when: c.expires, idx: i, gen: c.gen}, c.timeout)
	}
}

// expiryLookahead is how many expiries of one timeout ahead
// prefetchExpiry starts on a connection: far enough that its lines arrive
// before they are needed, near enough that they are still cached then.
const expiryLookahead = 4

// prefetchExpiry loads, ahead of time, what the expiries due next in the
// FIFO just popped from will touch: a timer that fires is the oldest of its
// timeout, so its hash bucket and the chain in front of it are nowhere in
// the cache, and each would stall the unhash for a memory access. It runs a
// pipeline over two places in the FIFO: the bucket of the entry far ahead,
// the chain head of the one half as far (its bucket is cached by now).
// (Prefetching the entries themselves as well measured no faster.)
func (d *Director) prefetchExpiry() {
	if e := d.timers.ahead(expiryLookahead); e != nil {
		if c := d.conns.at(e.idx); d.expires(c, e) {
			prefetch(unsafe.Pointer(d.conns.bucket(c)))
		}
	}
	if e := d.timers.ahead(expiryLookahead / 2); e != nil {
		if c := d.conns.at(e.idx); d.expires(c, e) {
			if head := uint32(*d.conns.bucket(c)); head != e.idx && head != 0 {
				prefetch(unsafe.Pointer(d.conns.at(head)))
			}
		}
	}
}

// expires reports whether timer entry e, once due, will unhash c (unless a
// packet re-arms c before).
func (d *Director) expires(c *conn, e *timerEntry) bool {
	return c.gen == e.gen && c.flags&connHashed != 0 && c.expires <= e.when
}

func (d *Director) fireTimer(e timerEntry) {
	c := d.conns.at(e.idx)
	if c.gen != e.gen || c.af == 0 || c.armed != e.when {
		return // stale: the slot was freed, or an earlier entry took over
	}
	if c.expires > e.when {
		c.armed = c.expires
		d.timers.push(timerEntry{when: c.expires, idx: e.idx, gen: c.gen}, c.timeout)
		return
	}
	c.armed = 0
	d.expire(e.idx, e.when)
}

// expire is ip_vs_conn_expire: a conn that still controls others is kept
// another 60 s; otherwise it leaves the table, its controller and its dest.
func (d *Director) expire(i uint32, t int64) {
	c := d.conns.at(i)
	if c.nControl > 0 {
		c.timeout = uint32(templateRearm / time.Millisecond)
		d.arm(i, t)
		return
	}
	forced := c.timeout == 0
	d.conns.unhash(i)
	if ct := c.control; ct != 0 {
		c.control = 0
		p := d.conns.at(ct)
		p.nControl--
		// Drop the controller too, if this was a forced drop and the
		// controller is now idle (a non-assured template, or a control conn).
		if forced && p.nControl == 0 && (p.flags&connTemplate == 0 || p.state&tplAssured == 0) {
			d.expireNow(ct, t)
		}
	}
	d.unbind(i)
	d.conns.release(i)
}

// expireNow is ip_vs_conn_expire_now: the timer fires at once (on the next
// Advance), with timeout 0 marking the expiry as forced.
func (d *Director) expireNow(i uint32, t int64) {
	c := d.conns.at(i)
	c.timeout = 0
	c.expires = t
	c.armed = t
	d.timers.push(timerEntry{when: t, idx: i, gen: c.gen}, 0)
}

// bind attaches a new conn to its dest and counts it (ip_vs_bind_dest).
func (d *Director) bind(i uint32, dest *Dest) {
	c := d.conns.at(i)
	c.dest = dest.id
	c.flags |= uint32(dest.cfg.Method) | connInactive
	if dest.cfg.Method != MethodMasq {
		c.flags |= connNoOutput
	}
	dest.refs++
	if c.flags&connTemplate != 0 {
		dest.BindTemplate()
	} else {
		dest.BindConn()
	}
}

// unbind uncounts an expiring conn (ip_vs_unbind_dest).
func (d *Director) unbind(i uint32) {
	c := d.conns.at(i)
	dest := d.dests[c.dest]
	if c.flags&connTemplate != 0 {
		dest.UnbindTemplate()
	} else {
		dest.UnbindConn(c.flags&connInactive == 0)
	}
	dest.refs--
}

// sweepTrash is ip_vs_dest_trash_expire: free dests that have been
// unreferenced for 120 s.
func (d *Director) sweepTrash(t int64) {
	keep := d.trash[:0]
	for _, dest := range d.trash {
		switch {
		case dest.refs > 0, dest.svc != nil && dest.svc.Holds(&dest.Dest):
			// Connections, templates or an lblc/lblcr cache entry still
			// reference it (the kernel's refcount covers all three).
			keep = append(keep, dest)
		case dest.idleStart == 0:
			dest.idleStart = max(t, 1)
			keep = append(keep, dest)
		case t < dest.idleStart+int64(trashIdle):
			keep = append(keep, dest)
		default:
			d.dests[dest.id] = nil
			d.freeDests = append(d.freeDests, dest.id)
		}
	}
	clear(d.trash[len(keep):])
	d.trash = keep
	if len(d.trash) > 0 {
		d.nextTrash = t + int64(trashPeriod)
	} else {
		d.nextTrash = 0
	}
}

// addr16 converts an address to the table's form.
func addr16(a netip.Addr) [16]byte { return a.As16() }

func afOf(a netip.Addr) uint8 {
	if a.Is4() || a.Is4In6() {
		return 4
	}
	return 6
}

func addrFrom16(af uint8, b [16]byte) netip.Addr {
	a := netip.AddrFrom16(b)
	if af == 4 {
		return a.Unmap()
	}
	return a
}
