package scheduler

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// bench is a service under test with named dests, driven the way ipvsadm and
// clients drive a director: -a adds at the head, picks bind connections.
type bench struct {
	t     testing.TB
	svc   *Service
	dests map[string]*Dest
	names map[*Dest]string
	now   time.Time
}

func newBench(t testing.TB, sched string) *bench {
	b := &bench{t: t, svc: &Service{}, dests: map[string]*Dest{}, names: map[*Dest]string{}, now: time.Unix(1e9, 0)}
	require.NoError(t, b.svc.SetScheduler(sched))
	return b
}

// addr gives every name a fixed address: A…Z are 10.1.0.1…, "rsN" is
// 10.1.0.N, and anything that parses as ADDR:PORT is itself.
func addr(name string) netip.AddrPort {
	if ap, err := netip.ParseAddrPort(name); err == nil {
		return ap
	}
	var n int
	if _, err := fmt.Sscanf(name, "rs%d", &n); err != nil {
		n = int(name[0]-'A') + 1
	}
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 1, 0, byte(n)}), 80)
}

// add is ipvsadm -a: a new dest (or the same one back from the trash) at the
// head of the list.
func (b *bench) add(name string, weight int32) *Dest {
	d := b.dests[name]
	if d == nil {
		ap := addr(name)
		d = &Dest{Addr: ap.Addr(), Port: ap.Port()}
		b.dests[name], b.names[d] = d, name
	}
	d.SetWeight(weight, true)
	b.svc.AddDest(d)
	return d
}

// edit is ipvsadm -e with a weight and thresholds.
func (b *bench) edit(name string, weight int32, upper, lower uint32) {
	d := b.dests[name]
	d.SetWeight(weight, false)
	d.SetThresholds(upper, lower, b.svc.Profile)
	b.svc.UpdDest(d)
}

func (b *bench) del(name string) { require.True(b.t, b.svc.DelDest(b.dests[name])) }

type ending int

const (
	held   ending = iota // the connection stays ESTABLISHED: active
	closed               // closed: inactive until it expires
	none                 // nothing is bound
)

// pick schedules one connection of f and binds it as e says; it returns the
// dest's name or "-".
func (b *bench) pick(f Flow, e ending) string {
	d := b.svc.Schedule(f, b.now)
	if d == nil {
		return "-"
	}
	switch e {
	case held:
		d.BindConn()
		d.SetActive(true)
	case closed:
		d.BindConn()
	}
	return b.names[d]
}

// picks runs n picks from one client and returns the names, space separated.
func (b *bench) picks(n int, e ending) string {
	return b.picksFrom(n, e, client("192.168.0.1"))
}

func (b *bench) picksFrom(n int, e ending, f Flow) string {
	out := make([]string, n)
	for i := range out {
		out[i] = b.pick(f, e)
	}
	return strings.Join(out, " ")
}

// client is a TCP flow from src (ADDR or ADDR:PORT) to 10.0.0.100:80.
func client(src string) Flow {
	f := Flow{Proto: 6, Dst: netip.MustParseAddr("10.0.0.100"), DstPort: 80}
	if ap, err := netip.ParseAddrPort(src); err == nil {
		f.Src, f.SrcPort = ap.Addr(), ap.Port()
	} else {
		f.Src, f.SrcPort = netip.MustParseAddr(src), 10000
	}
	return f
}

// toVIP is a TCP flow from a fixed client to vip:80.
func toVIP(vip string) Flow {
	f := client("10.2.0.1")
	f.Dst = netip.MustParseAddr(vip)
	return f
}

// repeat is s repeated n times, space separated.
func repeat(s string, n int) string { return strings.TrimSpace(strings.Repeat(s+" ", n)) }
