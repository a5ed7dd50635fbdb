package dataplane

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/lvslab/lvslab/scheduler"
)

// The control methods answer like the kernel's ip_vs_ctl.c: 0 on success,
// otherwise the errno ipvsadm turns into its message.

// maxTimeout is INT_MAX/HZ with HZ 250 (ip_vs_set_timeout's bound).
const maxTimeout = math.MaxInt32 / 250

func (d *Director) validService(cfg *ServiceConfig) syscall.Errno {
	k := cfg.Key
	if k.FWMark == 0 {
		switch k.Proto {
		case ProtoTCP, ProtoUDP, ProtoSCTP:
		default:
			return syscall.EFAULT
		}
		if !k.Addr.IsValid() {
			return syscall.EINVAL
		}
	}
	if len(cfg.Scheduler) >= 16 {
		return syscall.EINVAL
	}
	if k.IPv6 && cfg.Netmask > 128 {
		return syscall.EINVAL
	}
	if cfg.PE != "" {
		// No persistence engine is implemented: like a kernel without
		// ip_vs_pe_sip, the name is not found.
		return syscall.ENOENT
	}
	if cfg.Scheduler != "none" && !known(cfg.Scheduler) {
		return syscall.ENOENT
	}
	return 0
}

func known(name string) bool {
	var probe scheduler.Service
	return probe.SetScheduler(name) == nil
}

// AddService is ipvsadm -A.
func (d *Director) AddService(cfg ServiceConfig, now time.Time) syscall.Errno {
	d.advance(now.UnixNano())
	cfg.Key = cfg.Key.normal()
	if e := d.validService(&cfg); e != 0 {
		return e
	}
	if _, ok := d.svcs[cfg.Key]; ok {
		return syscall.EEXIST
	}
	s := &Service{dests: map[*scheduler.Dest]*Dest{}}
	s.Profile = d.profile
	s.Tunables = d.tunables
	if err := d.configure(s, cfg); err != 0 {
		return err
	}
	d.svcs[cfg.Key] = s
	d.lastSvc = nil
	d.svcOrder = append(d.svcOrder, s)
	d.count(s, 1)
	d.updateNextSvc()
	return 0
}

// configure applies flags, timeout, netmask and scheduler (ip_vs_edit_service).
func (d *Director) configure(s *Service, cfg ServiceConfig) syscall.Errno {
	old := s.SchedulerName()
	if err := s.SetScheduler(cfg.Scheduler); err != nil {
		return syscall.ENOENT
	}
	// The 60 s cache aging timer starts when lblc or lblcr is bound
	// (init_service); the other schedulers have no such timer.
	if name := s.SchedulerName(); name != old {
		s.nextExpire = 0
		if name == "lblc" || name == "lblcr" {
			s.nextExpire = d.now + int64(schedExpirePeriod)
		}
		d.updateNextSvc()
	}
	if cfg.Netmask == 0 {
		cfg.Netmask = 0xFFFFFFFF
		if cfg.Key.IPv6 {
			cfg.Netmask = 128
		}
	}
	s.cfg = cfg
	s.Flags = cfg.Flags
	return 0
}

// count keeps the per-kind service counts that service lookup consults.
func (d *Director) count(s *Service, n int) {
	k := s.cfg.Key
	switch {
	case k.FWMark != 0:
		fam := 0
		if k.IPv6 {
			fam = 1
		}
		d.nFWM[fam] += n
	case k.Port == 0:
		d.nPort0 += n
	case k.Port == 21:
		d.nFTP += n
	}
}

// EditService is ipvsadm -E: the same scheduler keeps its state, another
// starts fresh; flags, timeout and netmask are replaced.
func (d *Director) EditService(cfg ServiceConfig, now time.Time) syscall.Errno {
	d.advance(now.UnixNano())
	cfg.Key = cfg.Key.normal()
	s, ok := d.svcs[cfg.Key]
	if !ok {
		return syscall.ESRCH
	}
	if e := d.validService(&cfg); e != 0 {
		return e
	}
	return d.configure(s, cfg)
}

// DelService is ipvsadm -D: every dest goes to the trash; connections stay.
func (d *Director) DelService(key ServiceKey, now time.Time) syscall.Errno {
	d.advance(now.UnixNano())
	key = key.normal()
	s, ok := d.svcs[key]
	if !ok {
		return syscall.ESRCH
	}
	d.delService(s)
	return 0
}

func (d *Director) delService(s *Service) {
	for len(s.Dests) > 0 {
		d.delDest(s, s.dests[s.Dests[0]])
	}
	_ = s.SetScheduler("none")
	delete(d.svcs, s.cfg.Key)
	d.lastSvc = nil
	for i, x := range d.svcOrder {
		if x == s {
			d.svcOrder = append(d.svcOrder[:i], d.svcOrder[i+1:]...)
			break
		}
	}
	d.count(s, -1)
	d.updateNextSvc()
}

// Flush is ipvsadm -C. Connections are not removed.
func (d *Director) Flush(now time.Time) syscall.Errno {
	d.advance(now.UnixNano())
	for len(d.svcOrder) > 0 {
		d.delService(d.svcOrder[0])
	}
	return 0
}

func (d *Director) validDest(s *Service, dc *DestConfig) syscall.Errno {
	if dc.Weight < 0 {
		return syscall.ERANGE
	}
	if dc.LThreshold > dc.UThreshold {
		return syscall.ERANGE
	}
	if dc.TunType == 1 && dc.TunPort == 0 {
		return syscall.EINVAL
	}
	a := dc.Addr
	if !a.IsValid() || a.IsUnspecified() || a.IsMulticast() || a == netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
		return syscall.EINVAL
	}
	if a.Is6() && a.IsLinkLocalUnicast() {
		return syscall.EINVAL
	}
	if a.Is4() == s.cfg.Key.IPv6 && dc.Method != MethodTunnel {
		return syscall.EAFNOSUPPORT
	}
	return 0
}

func (s *Service) find(a netip.Addr, port uint16) *Dest {
	for _, sd := range s.Dests {
		if sd.Addr == a && sd.Port == port {
			return s.dests[sd]
		}
	}
	return nil
}

// AddDest is ipvsadm -a. A dest of the same service identity still in the
// trash comes back with its counters (§1.3).
func (d *Director) AddDest(key ServiceKey, dc DestConfig, now time.Time) syscall.Errno {
	d.advance(now.UnixNano())
	key = key.normal()
	s, ok := d.svcs[key]
	if !ok {
		return syscall.ESRCH
	}
	dc.Addr = dc.Addr.Unmap()
	if e := d.validDest(s, &dc); e != 0 {
		return e
	}
	if s.find(dc.Addr, dc.Port) != nil {
		return syscall.EEXIST
	}
	dest := d.fromTrash(key, dc.Addr, dc.Port)
	if dest == nil {
		dest = &Dest{key: key}
		dest.Addr, dest.Port = dc.Addr, dc.Port
		if n := len(d.freeDests); n > 0 {
			dest.id = d.freeDests[n-1]
			d.freeDests = d.freeDests[:n-1]
			d.dests[dest.id] = dest
		} else {
			dest.id = uint32(len(d.dests))
			d.dests = append(d.dests, dest)
		}
	}
	if dest.svc != nil && dest.svc != s {
		dest.stats.reset() // bound to another service object
	}
	dest.svc = s
	d.update(s, dest, dc, true)
	s.dests[&dest.Dest] = dest
	s.AddDest(&dest.Dest)
	return 0
}

func (d *Director) fromTrash(key ServiceKey, a netip.Addr, port uint16) *Dest {
	for i, dest := range d.trash {
		if dest.key == key && dest.Addr == a && dest.Port == port {
			d.trash = append(d.trash[:i], d.trash[i+1:]...)
			dest.inTrash = false
			dest.idleStart = 0
			return dest
		}
	}
	return nil
}

// update is __ip_vs_update_dest: everything is replaced by what was given.
func (d *Director) update(s *Service, dest *Dest, dc DestConfig, adding bool) {
	dest.cfg = dc
	dest.SetWeight(dc.Weight, adding)
	dest.SetThresholds(dc.UThreshold, dc.LThreshold, d.profile)
}

// EditDest is ipvsadm -e.
func (d *Director) EditDest(key ServiceKey, dc DestConfig, now time.Time) syscall.Errno {
	d.advance(now.UnixNano())
	key = key.normal()
	s, ok := d.svcs[key]
	if !ok {
		return syscall.ESRCH
	}
	dc.Addr = dc.Addr.Unmap()
	if e := d.validDest(s, &dc); e != 0 {
		return e
	}
	dest := s.find(dc.Addr, dc.Port)
	if dest == nil {
		return syscall.ENOENT
	}
	d.update(s, dest, dc, false)
	s.UpdDest(&dest.Dest)
	return 0
}

// DelDest is ipvsadm -d: the dest goes to the trash.
func (d *Director) DelDest(key ServiceKey, a netip.Addr, port uint16, now time.Time) syscall.Errno {
	d.advance(now.UnixNano())
	key = key.normal()
	s, ok := d.svcs[key]
	if !ok {
		return syscall.ESRCH
	}
	dest := s.find(a.Unmap(), port)
	if dest == nil {
		return syscall.ENOENT
	}
	d.delDest(s, dest)
	return 0
}

func (d *Director) delDest(s *Service, dest *Dest) {
	s.DelDest(&dest.Dest)
	delete(s.dests, &dest.Dest)
	dest.inTrash = true
	dest.idleStart = 0
	d.trash = append(d.trash, dest)
	if d.nextTrash == 0 {
		d.nextTrash = d.now + int64(trashPeriod)
	}
	if d.sys.ExpireNodestConn {
		d.flushNodest()
	}
}

// flushNodest is ip_vs_expire_nodest_conn_flush: every connection of an
// unavailable dest that controls nobody is deleted at once, and then its
// controller if that now controls nobody (assured or not).
func (d *Director) flushNodest() {
	for i := range d.conns.size {
		c := d.conns.at(i + 1)
		if c.af == 0 || d.dests[c.dest].Available() || c.nControl > 0 {
			continue
		}
		ct := c.control
		d.del(i + 1)
		if ct != 0 {
			if p := d.conns.at(ct); p.af != 0 && p.nControl == 0 {
				d.del(ct)
			}
		}
	}
}

// del is ip_vs_conn_del: expire now, synchronously, as a forced drop.
func (d *Director) del(i uint32) {
	c := d.conns.at(i)
	if c.control != 0 {
		c.timeout = 0
	}
	d.expire(i, d.now)
}

// Zero is ipvsadm -Z: one service (key non-nil) or all and the totals.
func (d *Director) Zero(key *ServiceKey, now time.Time) syscall.Errno {
	d.advance(now.UnixNano())
	zero := func(s *Service) {
		s.stats.reset()
		for _, sd := range s.Dests {
			s.dests[sd].stats.reset()
		}
	}
	if key != nil {
		s, ok := d.svcs[key.normal()]
		if !ok {
			return syscall.ESRCH
		}
		zero(s)
		return 0
	}
	for _, s := range d.svcOrder {
		zero(s)
	}
	d.total.reset()
	return 0
}

// Timeouts are the three values of ipvsadm --set / -L --timeout.
type Timeouts struct {
	TCP, TCPFin, UDP time.Duration
}

// SetTimeouts is ipvsadm --set: 0 leaves a value unchanged.
func (d *Director) SetTimeouts(t Timeouts) syscall.Errno {
	for _, v := range []time.Duration{t.TCP, t.TCPFin, t.UDP} {
		if v < 0 || v > maxTimeout*time.Second {
			return syscall.EINVAL
		}
	}
	if t.TCP > 0 {
		d.tcpTimeouts[TCPEstablished] = uint32(t.TCP / time.Millisecond)
	}
	if t.TCPFin > 0 {
		d.tcpTimeouts[TCPFinWait] = uint32(t.TCPFin / time.Millisecond)
	}
	if t.UDP > 0 {
		d.udpTimeout = uint32(t.UDP / time.Millisecond)
	}
	return 0
}

// Timeouts returns the current --set values.
func (d *Director) Timeouts() Timeouts {
	ms := func(v uint32) time.Duration { return time.Duration(v) * time.Millisecond }
	return Timeouts{ms(d.tcpTimeouts[TCPEstablished]), ms(d.tcpTimeouts[TCPFinWait]), ms(d.udpTimeout)}
}

// ErrNoSysctl is returned for a name the director does not have.
var ErrNoSysctl = errors.New("no such sysctl")

// SetSysctl sets net.ipv4.vs.NAME (the prefix is optional) from its text
// form, with the kernel's range checks (EINVAL).
func (d *Director) SetSysctl(name, value string) error {
	name = strings.TrimPrefix(strings.ReplaceAll(name, "/", "."), "net.ipv4.vs.")
	v, err := strconv.Atoi(strings.TrimSpace(value))
	if err != nil {
		return fmt.Errorf("%s: %w", name, syscall.EINVAL)
	}
	boolean := func(p *bool) error { *p = v != 0; return nil }
	// Defense levels (§6.1): 1 and 2 are automatic and follow available
	// memory; the write re-evaluates at once, and a userspace director never
	// runs short, so 2 ("on") falls back to 1 ("off") as the kernel's would.
	level := func(p *int) error {
		if v < 0 || v > 3 {
			return fmt.Errorf("%s: %w", name, syscall.EINVAL)
		}
		*p = v
		if v == 2 {
			*p = 1
		}
		return nil
	}
	switch name {
	case "expire_nodest_conn":
		return boolean(&d.sys.ExpireNodestConn)
	case "expire_quiescent_template":
		return boolean(&d.sys.ExpireQuiescentTemplate)
	case "conn_reuse_mode":
		d.sys.ConnReuseMode = v
	case "sloppy_tcp":
		return boolean(&d.sys.SloppyTCP)
	case "sloppy_sctp":
		return boolean(&d.sys.SloppySCTP)
	case "secure_tcp":
		return level(&d.sys.SecureTCP)
	case "drop_packet":
		return level(&d.sys.DropPacket)
	case "am_droprate":
		d.sys.AmDropRate = v
	case "cache_bypass":
		return boolean(&d.sys.CacheBypass)
	case "nat_icmp_send":
		return boolean(&d.sys.NATICMPSend)
	case "run_estimation":
		return boolean(&d.sys.RunEstimation)
	case "lblc_expiration":
		d.tunables.LBLCExpiration = time.Duration(v) * time.Second
	case "lblcr_expiration":
		d.tunables.LBLCRExpiration = time.Duration(v) * time.Second
	case "drop_entry", "amemthresh", "conntrack", "snat_reroute", "sync_version", "sync_ports",
		"sync_persist_mode", "sync_qlen_max", "sync_sock_size", "sync_refresh_period", "sync_retries",
		"pmtu_disc", "backup_only", "schedule_icmp", "ignore_tunneled", "est_nice", "debug_level":
		// Accepted for scripts; these touch parts the core does not model.
	default:
		return fmt.Errorf("%s: %w", name, ErrNoSysctl)
	}
	return nil
}
