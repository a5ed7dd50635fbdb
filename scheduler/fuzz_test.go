package scheduler

import (
	"net/netip"
	"slices"
	"testing"
	"time"
)

// ops reads fuzz input one byte at a time, 0 once it runs out.
type ops []byte

func (o *ops) next() byte {
	if len(*o) == 0 {
		return 0
	}
	b := (*o)[0]
	*o = (*o)[1:]
	return b
}

type fuzzConn struct {
	d      *Dest
	active bool
}

// FuzzSchedulers applies random add/delete/edit/pick/expire sequences to a
// service and checks, after every step, what must hold whatever the input.
func FuzzSchedulers(f *testing.F) {
	for i := range Names {
		f.Add([]byte{byte(i), 0, 3, 0, 5, 0, 1, 0, 2, 4, 9, 4, 9, 4, 9, 2, 1, 0, 4, 9, 1, 0, 4, 7})
	}
	f.Fuzz(runFuzzBody)
}

// maxFuzzOps bounds one input: an mh table rebuild walks 4093 slots, so
// thousands of rebuilds would make single executions slow.
const maxFuzzOps = 400

func runFuzzBody(t *testing.T, data []byte) {
	defer func(saved int) { scanCutoff = saved }(scanCutoff)
	scanCutoff = 0 // index every list, so each pick compares index and walk
	in := ops(data[:min(len(data), maxFuzzOps)])
	sched := Names[int(in.next())%len(Names)]
	svc := &Service{Profile: Profile(in.next() % 2)}
	if err := svc.SetScheduler(sched); err != nil {
		t.Fatal(err)
	}
	svc.Flags = uint32(in.next()) & (FlagSched1 | FlagSched2)
	pool := make([]*Dest, 16) // dests by address; deleted ones stay for the trash
	var conns []fuzzConn
	now := time.Unix(1e9, 0)
	for len(in) > 0 {
		switch in.next() % 7 {
		case 0: // ipvsadm -a
			i := int(in.next()) % len(pool)
			d := pool[i]
			if d == nil {
				d = &Dest{Addr: netip.AddrFrom4([4]byte{10, 1, 0, byte(i)}), Port: 80}
				pool[i] = d
			}
			if d.Available() {
				continue
			}
			d.SetWeight(int32(in.next()%8), true)
			u := uint32(in.next() % 6)
			d.SetThresholds(u, min(uint32(in.next()%6), u), svc.Profile)
			svc.AddDest(d)
		case 1: // ipvsadm -d
			if len(svc.Dests) > 0 {
				svc.DelDest(svc.Dests[int(in.next())%len(svc.Dests)])
			}
		case 2: // ipvsadm -e
			if len(svc.Dests) > 0 {
				d := svc.Dests[int(in.next())%len(svc.Dests)]
				d.SetWeight(int32(in.next()%8), false)
				u := uint32(in.next() % 6)
				d.SetThresholds(u, min(uint32(in.next()%6), u), svc.Profile)
				svc.UpdDest(d)
			}
		case 3, 4: // a new connection
			fl := Flow{Proto: 6, Src: netip.AddrFrom4([4]byte{192, 168, 0, in.next()}), SrcPort: uint16(in.next()),
				Dst: netip.AddrFrom4([4]byte{10, 0, 0, in.next() % 4}), DstPort: 80}
			if slices.Contains(indexedSchedulers, svc.SchedulerName()) {
				walked, indexed := bothWays(svc, fl, [2]uint32{uint32(in.next()), uint32(in.next())})
				if walked != indexed {
					t.Fatalf("%s: the index picks %v where the kernel's walk picks %v", svc.SchedulerName(), indexed, walked)
				}
			}
			d := svc.Schedule(fl, now)
			checkPick(t, svc, d)
			if d != nil {
				d.BindConn()
				c := fuzzConn{d: d, active: in.next()%2 == 0}
				if c.active {
					d.SetActive(true)
				}
				conns = append(conns, c)
			}
		case 5: // a connection expires
			if len(conns) > 0 {
				i := int(in.next()) % len(conns)
				conns[i].d.UnbindConn(conns[i].active)
				conns = slices.Delete(conns, i, i+1)
			}
		case 6: // time passes; the 60 s timer ticks; the scheduler may be rebound
			now = now.Add(time.Duration(in.next()) * time.Minute)
			svc.Expire(now)
			if b := in.next(); b < 16 {
				if err := svc.SetScheduler(Names[int(b)%len(Names)]); err != nil {
					t.Fatal(err)
				}
			}
		}
		checkDests(t, svc, pool)
	}
}

func checkPick(t *testing.T, svc *Service, d *Dest) {
	t.Helper()
	if d == nil {
		return
	}
	if !slices.Contains(svc.Dests, d) {
		t.Fatalf("%s picked a dest not in the list", svc.SchedulerName())
	}
	if d.Weight <= 0 {
		t.Fatalf("%s picked a quiescent dest", svc.SchedulerName())
	}
	// lblc's cache hit does not look at OVERLOAD (§2.10).
	if d.Overloaded() && svc.SchedulerName() != "lblc" {
		t.Fatalf("%s picked an overloaded dest", svc.SchedulerName())
	}
	if svc.SchedulerName() == "ovf" && d.ActiveConns > d.Weight {
		t.Fatalf("ovf picked a dest above its weight")
	}
}

func checkDests(t *testing.T, svc *Service, pool []*Dest) {
	t.Helper()
	for _, d := range pool {
		if d == nil {
			continue
		}
		if d.ActiveConns < 0 || d.InactConns < 0 {
			t.Fatalf("negative counters %d/%d", d.ActiveConns, d.InactConns)
		}
		if d.Available() != slices.Contains(svc.Dests, d) {
			t.Fatalf("AVAILABLE is %v for a dest listed: %v", d.Available(), !d.Available())
		}
		if d.UThreshold == 0 && d.Overloaded() {
			t.Fatalf("OVERLOAD without an upper threshold")
		}
		if svc.Profile == ProfileCurrent && d.UThreshold > 0 {
			if d.total() >= int64(d.UThreshold) && !d.Overloaded() {
				t.Fatalf("total %d reaches -x %d without OVERLOAD", d.total(), d.UThreshold)
			}
			if d.total() < d.lowMark() && d.Overloaded() {
				t.Fatalf("total %d below the low mark %d with OVERLOAD", d.total(), d.lowMark())
			}
		}
	}
}
