package dataplane

import (
	"errors"
	"net/netip"
	"sort"
	"syscall"
	"time"

	"github.com/lvslab/lvslab/dataplane/ipvsadm"
)

// Control is the director in the kernel's role for the ipvsadm program: it
// implements ipvsadm.Director with the time its clock reads.
type Control struct {
	d     *Director
	clock func() time.Time
}

// Control returns the ipvsadm view of d; clock gives the time of each
// request (a virtual clock in replay, the wall clock in a lab).
func (d *Director) Control(clock func() time.Time) *Control {
	return &Control{d: d, clock: clock}
}

var _ ipvsadm.Director = (*Control)(nil)

// errnoErr turns the core's 0-or-errno into an error.
func errnoErr(e syscall.Errno) error {
	if e == 0 {
		return nil
	}
	return e
}

func keyFrom(k ipvsadm.ServiceKey) ServiceKey {
	return ServiceKey{
		Proto:  uint8(k.Protocol),
		Addr:   k.Addr,
		Port:   k.Port,
		FWMark: k.FWMark,
		IPv6:   k.AF == ipvsadm.FamilyIPv6,
	}
}

func keyTo(k ServiceKey) ipvsadm.ServiceKey {
	out := ipvsadm.ServiceKey{AF: ipvsadm.FamilyIPv4, Port: k.Port, FWMark: k.FWMark}
	if k.IPv6 {
		out.AF = ipvsadm.FamilyIPv6
	}
	if k.FWMark == 0 {
		out.Protocol = ipvsadm.Protocol(k.Proto)
		out.Addr = k.Addr
	}
	return out
}

func serviceFrom(s ipvsadm.ServiceSpec) ServiceConfig {
	return ServiceConfig{
		Key:       keyFrom(s.Key),
		Scheduler: s.Scheduler,
		Flags:     uint32(s.Flags),
		Timeout:   s.Timeout,
		Netmask:   s.Netmask,
		PE:        s.PE,
	}
}

func destFrom(d ipvsadm.DestSpec) DestConfig {
	return DestConfig{
		Addr:       d.Addr,
		Port:       d.Port,
		Method:     Method(d.Method),
		Weight:     d.Weight,
		UThreshold: d.UThreshold,
		LThreshold: d.LThreshold,
		TunType:    uint8(d.TunType),
		TunPort:    d.TunPort,
		TunFlags:   uint16(d.TunFlags),
	}
}

func destTo(d DestConfig) ipvsadm.DestSpec {
	return ipvsadm.DestSpec{
		Addr:       d.Addr,
		Port:       d.Port,
		Method:     ipvsadm.Method(d.Method),
		Weight:     d.Weight,
		UThreshold: d.UThreshold,
		LThreshold: d.LThreshold,
		TunType:    ipvsadm.TunType(d.TunType),
		TunPort:    d.TunPort,
		TunFlags:   ipvsadm.TunFlags(d.TunFlags),
	}
}

func statsTo(c Counters, r Rates) ipvsadm.Stats {
	return ipvsadm.Stats{
		Conns: c.Conns, InPkts: c.InPkts, OutPkts: c.OutPkts, InBytes: c.InBytes, OutBytes: c.OutBytes,
		CPS: r.CPS, InPPS: r.InPPS, OutPPS: r.OutPPS, InBPS: r.InBPS, OutBPS: r.OutBPS,
	}
}

func (c *Control) AddService(s ipvsadm.ServiceSpec) error {
	return errnoErr(c.d.AddService(serviceFrom(s), c.clock()))
}

func (c *Control) EditService(s ipvsadm.ServiceSpec) error {
	return errnoErr(c.d.EditService(serviceFrom(s), c.clock()))
}

func (c *Control) DelService(k ipvsadm.ServiceKey) error {
	return errnoErr(c.d.DelService(keyFrom(k), c.clock()))
}

func (c *Control) Flush() error { return errnoErr(c.d.Flush(c.clock())) }

func (c *Control) AddDest(k ipvsadm.ServiceKey, d ipvsadm.DestSpec) error {
	return errnoErr(c.d.AddDest(keyFrom(k), destFrom(d), c.clock()))
}

func (c *Control) EditDest(k ipvsadm.ServiceKey, d ipvsadm.DestSpec) error {
	return errnoErr(c.d.EditDest(keyFrom(k), destFrom(d), c.clock()))
}

func (c *Control) DelDest(k ipvsadm.ServiceKey, dest netip.AddrPort) error {
	return errnoErr(c.d.DelDest(keyFrom(k), dest.Addr(), dest.Port(), c.clock()))
}

func (c *Control) Zero(k ipvsadm.ServiceKey) error {
	if k == (ipvsadm.ServiceKey{}) {
		return errnoErr(c.d.Zero(nil, c.clock()))
	}
	key := keyFrom(k)
	return errnoErr(c.d.Zero(&key, c.clock()))
}

func (c *Control) SetTimeouts(t ipvsadm.Timeouts) error {
	return errnoErr(c.d.SetTimeouts(Timeouts{TCP: t.TCP, TCPFin: t.TCPFin, UDP: t.UDP}))
}

// ErrNoSync is the answer to sync daemon requests: the core has no
// connection synchronisation.
var ErrNoSync = errors.New("connection synchronisation is not supported by this director")

func (c *Control) StartDaemon(ipvsadm.DaemonSpec) error { return ErrNoSync }

func (c *Control) StopDaemon(ipvsadm.DaemonState, uint8) error { return ErrNoSync }

func (c *Control) Snapshot() ipvsadm.Snapshot {
	t := c.d.Timeouts()
	snap := ipvsadm.Snapshot{
		ConnTabSize: ConnTabSize,
		Timeouts:    ipvsadm.Timeouts{TCP: t.TCP, TCPFin: t.TCPFin, UDP: t.UDP},
	}
	for _, si := range c.d.Services(c.clock()) {
		e := ipvsadm.ServiceEntry{
			ServiceSpec: ipvsadm.ServiceSpec{
				Key:       keyTo(si.Config.Key),
				Scheduler: si.Scheduler,
				Flags:     ipvsadm.ServiceFlags(si.Config.Flags) | ipvsadm.SvcHashed,
				Timeout:   si.Config.Timeout,
				Netmask:   si.Config.Netmask,
				PE:        si.Config.PE,
			},
			Stats: statsTo(si.Stats, si.Rates),
		}
		for _, di := range si.Dests {
			e.Dests = append(e.Dests, ipvsadm.DestEntry{
				DestSpec:     destTo(di.Config),
				ActiveConns:  uint32(max(di.ActiveConns, 0)),
				InactConns:   uint32(max(di.InactConns, 0)),
				PersistConns: uint32(max(di.PersistConns, 0)),
				Stats:        statsTo(di.Stats, di.Rates),
			})
		}
		snap.Services = append(snap.Services, e)
	}
	return snap
}

func (c *Control) Conns() []ipvsadm.ConnEntry {
	var out []ipvsadm.ConnEntry
	for _, ci := range c.d.Conns(c.clock()) {
		e := ipvsadm.ConnEntry{
			Protocol: ipvsadm.Protocol(ci.Proto),
			Client:   ci.Client,
			Virtual:  ci.Virtual,
			Dest:     ci.Dest,
			State:    ci.State,
			Expires:  ci.Expires,
			Template: ci.Template,
		}
		out = append(out, e)
	}
	// The table's own order depends on its hash seed; sort so that the
	// listing repeats run to run.
	sort.SliceStable(out, func(i, j int) bool { return out[i].Client.Compare(out[j].Client) < 0 })
	return out
}
