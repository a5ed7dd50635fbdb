package ipvsadm

import (
	"net/netip"
	"slices"
	"syscall"
)

// fakeDirector is a kernel stand-in for tests: it keeps services and
// destinations with the kernel's validation and error numbers and its list
// orders (newest service first, fwmark services after the others; newest
// destination first), and nothing else. Counters and connections are set
// by the tests.
type fakeDirector struct {
	services []*ServiceEntry
	timeouts Timeouts
	daemons  []DaemonSpec
	conns    []ConnEntry
	calls    []string
}

var fakeSchedulers = []string{"rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "fo", "ovf", "mh"}

func newFakeDirector() *fakeDirector {
	return &fakeDirector{timeouts: Timeouts{TCP: 900e9, TCPFin: 120e9, UDP: 300e9}}
}

func (f *fakeDirector) find(k ServiceKey) (int, *ServiceEntry) {
	for i, s := range f.services {
		if sameService(s.Key, k) {
			return i, s
		}
	}
	return -1, nil
}

func (f *fakeDirector) checkService(s ServiceSpec) error {
	if !slices.Contains(fakeSchedulers, s.Scheduler) || s.PE != "" {
		return syscall.ENOENT
	}
	if s.Key.AF == FamilyIPv6 && (s.Netmask < 1 || s.Netmask > 128) {
		return syscall.EINVAL
	}
	return nil
}

func (f *fakeDirector) AddService(s ServiceSpec) error {
	f.calls = append(f.calls, "AddService")
	if _, old := f.find(s.Key); old != nil {
		return syscall.EEXIST
	}
	if err := f.checkService(s); err != nil {
		return err
	}
	e := &ServiceEntry{ServiceSpec: s}
	e.Flags |= SvcHashed
	if s.Key.FWMark != 0 {
		f.services = append(f.services, e)
	} else {
		f.services = append([]*ServiceEntry{e}, f.services...)
	}
	return nil
}

func (f *fakeDirector) EditService(s ServiceSpec) error {
	f.calls = append(f.calls, "EditService")
	_, old := f.find(s.Key)
	if old == nil {
		return syscall.ESRCH
	}
	if err := f.checkService(s); err != nil {
		return err
	}
	old.ServiceSpec = s
	old.Flags |= SvcHashed
	return nil
}

func (f *fakeDirector) DelService(k ServiceKey) error {
	f.calls = append(f.calls, "DelService")
	i, old := f.find(k)
	if old == nil {
		return syscall.ESRCH
	}
	f.services = slices.Delete(f.services, i, i+1)
	return nil
}

func (f *fakeDirector) Flush() error {
	f.calls = append(f.calls, "Flush")
	f.services = nil
	return nil
}

func (f *fakeDirector) checkDest(d DestSpec) error {
	if !d.Addr.IsValid() || d.Addr.IsMulticast() || d.Addr.IsUnspecified() || d.Addr == netip.IPv4Unspecified() {
		return syscall.EINVAL
	}
	if d.LThreshold > d.UThreshold {
		return syscall.ERANGE
	}
	if d.Method == MethodTunnel && d.TunType == TunGUE && d.TunPort == 0 {
		return syscall.EINVAL
	}
	return nil
}

func (f *fakeDirector) AddDest(k ServiceKey, d DestSpec) error {
	f.calls = append(f.calls, "AddDest")
	_, s := f.find(k)
	if s == nil {
		return syscall.ESRCH
	}
	if err := f.checkDest(d); err != nil {
		return err
	}
	for _, e := range s.Dests {
		if e.AddrPort() == d.AddrPort() {
			return syscall.EEXIST
		}
	}
	s.Dests = append([]DestEntry{{DestSpec: d}}, s.Dests...)
	return nil
}

func (f *fakeDirector) EditDest(k ServiceKey, d DestSpec) error {
	f.calls = append(f.calls, "EditDest")
	_, s := f.find(k)
	if s == nil {
		return syscall.ESRCH
	}
	if d.LThreshold > d.UThreshold {
		return syscall.ERANGE
	}
	for i := range s.Dests {
		if s.Dests[i].AddrPort() == d.AddrPort() {
			s.Dests[i].DestSpec = d
			return nil
		}
	}
	return syscall.ENOENT
}

func (f *fakeDirector) DelDest(k ServiceKey, dest netip.AddrPort) error {
	f.calls = append(f.calls, "DelDest")
	_, s := f.find(k)
	if s == nil {
		return syscall.ESRCH
	}
	for i := range s.Dests {
		if s.Dests[i].AddrPort() == dest {
			s.Dests = slices.Delete(s.Dests, i, i+1)
			return nil
		}
	}
	return syscall.ENOENT
}

func (f *fakeDirector) Zero(k ServiceKey) error {
	f.calls = append(f.calls, "Zero")
	zero := func(s *ServiceEntry) {
		s.Stats = Stats{}
		for i := range s.Dests {
			s.Dests[i].Stats = Stats{}
		}
	}
	if k == (ServiceKey{}) {
		for _, s := range f.services {
			zero(s)
		}
		return nil
	}
	_, s := f.find(k)
	if s == nil {
		return syscall.ESRCH
	}
	zero(s)
	return nil
}

func (f *fakeDirector) SetTimeouts(t Timeouts) error {
	f.calls = append(f.calls, "SetTimeouts")
	if t.TCP != 0 {
		f.timeouts.TCP = t.TCP
	}
	if t.TCPFin != 0 {
		f.timeouts.TCPFin = t.TCPFin
	}
	if t.UDP != 0 {
		f.timeouts.UDP = t.UDP
	}
	return nil
}

func (f *fakeDirector) StartDaemon(d DaemonSpec) error {
	f.calls = append(f.calls, "StartDaemon")
	for _, x := range f.daemons {
		if x.State == d.State {
			return syscall.EEXIST
		}
	}
	// The kernel fills in its defaults.
	if d.SyncMaxLen == 0 {
		d.SyncMaxLen = 1472
	}
	if !d.MCastGroup.IsValid() {
		d.MCastGroup = netip.MustParseAddr("224.0.0.81")
	}
	if d.MCastPort == 0 {
		d.MCastPort = 8848
	}
	if d.MCastTTL == 0 {
		d.MCastTTL = 1
	}
	f.daemons = append(f.daemons, d)
	slices.SortFunc(f.daemons, func(a, b DaemonSpec) int { return int(a.State) - int(b.State) })
	return nil
}

func (f *fakeDirector) StopDaemon(state DaemonState, _ uint8) error {
	f.calls = append(f.calls, "StopDaemon")
	for i, x := range f.daemons {
		if x.State == state {
			f.daemons = slices.Delete(f.daemons, i, i+1)
			return nil
		}
	}
	return syscall.ESRCH
}

func (f *fakeDirector) Snapshot() Snapshot {
	snap := Snapshot{ConnTabSize: 4096, Timeouts: f.timeouts, Daemons: slices.Clone(f.daemons)}
	for _, s := range f.services {
		e := *s
		e.Dests = slices.Clone(s.Dests)
		snap.Services = append(snap.Services, e)
	}
	return snap
}

func (f *fakeDirector) Conns() []ConnEntry { return slices.Clone(f.conns) }
