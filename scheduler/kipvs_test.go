package scheduler

import (
	"bufio"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The kipvs samples are the real kernel's decisions (shared/tools/kipvs). The
// ones whose decisions depend only on the scheduler and the connection
// counters are copied into testdata/kipvs and replayed here through a small
// driver. Persistence (features, spec-persist, spec-listings), firewall marks
// and one-packet scheduling (fwmark-ops) need the director core and are left
// to lvslab replay.
var kipvsSamples = []string{
	"rr", "wrr", "lc", "wlc", "sed", "nq", "fo", "lblc", "dh", "sh", "mh", "dr-via-director",
	"spec-rr", "spec-wrr", "spec-lc-wlc", "spec-overhead", "spec-overload", "spec-threshold-edit",
	"spec-sh", "spec-dh", "spec-mh",
}

func TestKipvsSamplesReproduced(t *testing.T) {
	for _, name := range kipvsSamples {
		t.Run(name, func(t *testing.T) {
			scn := filepath.Join("testdata", "kipvs", name+".scn")
			want := decisionLines(t, filepath.Join("testdata", "kipvs", name+".out"))
			got := replayScenario(t, scn)
			require.NotEmpty(t, want)
			assert.Equal(t, want, got)
		})
	}
}

// TestKipvsCopiesMatchShared keeps testdata/kipvs in step with the oracle's
// samples when the shared tree sits beside the checkout.
func TestKipvsCopiesMatchShared(t *testing.T) {
	shared := filepath.Join("..", "..", "shared", "tools", "kipvs")
	if _, err := os.Stat(shared); err != nil {
		t.Skip("shared/tools/kipvs is not beside this checkout")
	}
	for _, name := range kipvsSamples {
		for _, f := range []string{"scenarios/" + name + ".scn", "samples/" + name + ".out"} {
			orig, err := os.ReadFile(filepath.Join(shared, f))
			require.NoError(t, err)
			copied, err := os.ReadFile(filepath.Join("testdata", "kipvs", filepath.Base(f)))
			require.NoError(t, err)
			assert.Equal(t, string(orig), string(copied), "testdata/kipvs/%s differs from shared; copy it again", filepath.Base(f))
		}
	}
}

var decisionLine = regexp.MustCompile(`^[0-9]+ `)

func decisionLines(t *testing.T, path string) []string {
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if decisionLine.MatchString(sc.Text()) {
			out = append(out, sc.Text())
		}
	}
	require.NoError(t, sc.Err())
	return out
}

// Connection lifetimes of the kipvs client's endings (§3.4): a closed TCP
// connection waits in TIME_WAIT or FIN_WAIT, an RST one in CLOSE, a UDP one
// in its single state; held ones stay ESTABLISHED.
const (
	closedLife = 120 * time.Second
	rstLife    = 10 * time.Second
	udpLife    = 300 * time.Second
)

type kipvsService struct {
	svc   *Service
	proto uint8
	vip   netip.AddrPort
	dests map[netip.AddrPort]*Dest
	trash map[netip.AddrPort]*Dest
}

type kipvsConn struct {
	client  netip.Addr
	dest    *Dest
	active  bool
	held    bool
	expires time.Time
}

// kipvsDriver applies a scenario's ipvsadm and conn lines to Services.
type kipvsDriver struct {
	t        *testing.T
	now      time.Time
	services map[string]*kipvsService // by "-t 10.0.0.100:80"
	first    *kipvsService
	sport    map[netip.Addr]uint16
	conns    []*kipvsConn
	seq      int
	out      []string
}

func replayScenario(t *testing.T, path string) []string {
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	k := &kipvsDriver{t: t, now: time.Unix(1e9, 0), services: map[string]*kipvsService{}, sport: map[netip.Addr]uint16{}}
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		text, _, _ := strings.Cut(sc.Text(), " #")
		fields := strings.Fields(text)
		if len(fields) == 0 || strings.HasPrefix(fields[0], "#") {
			continue
		}
		k.expire()
		where := fmt.Sprintf("%s:%d", path, line)
		switch fields[0] {
		case "ipvsadm":
			k.ipvsadm(where, fields[1:])
		case "conn":
			k.conn(where, fields[1:])
		case "close":
			k.close(fields[1:])
		case "sleep":
			s, err := strconv.ParseFloat(fields[1], 64)
			require.NoError(t, err, where)
			k.now = k.now.Add(time.Duration(s * float64(time.Second)))
		case "echo", "replies", "sh", "waitstats", "statswait", "timeout":
		default:
			t.Fatalf("%s: the driver does not handle %q", where, fields[0])
		}
	}
	require.NoError(t, sc.Err())
	return k.out
}

// expire ends the connections whose timers have run out, as the kernel's
// ip_vs_conn_expire does (dest counters and OVERLOAD through UnbindConn).
func (k *kipvsDriver) expire() {
	kept := k.conns[:0]
	for _, c := range k.conns {
		if !c.held && !k.now.Before(c.expires) {
			c.dest.UnbindConn(c.active)
			continue
		}
		kept = append(kept, c)
	}
	k.conns = kept
}

func (k *kipvsDriver) ipvsadm(where string, args []string) {
	t := k.t
	var cmd, svcKey, sched, flags, rs string
	var proto uint8
	var weight int32 = 1
	var upper, lower uint32
	for i := 0; i < len(args); i++ {
		arg := func() string {
			i++
			require.Less(t, i, len(args), "%s: %s needs a value", where, args[i-1])
			return args[i]
		}
		switch a := args[i]; a {
		case "-A", "-E", "-a", "-e", "-d":
			cmd = a
		case "-L", "-S", "-Z", "--set":
			return // listings and timeouts do not change the decisions
		case "-t", "-u":
			proto = map[string]uint8{"-t": 6, "-u": 17}[a]
			svcKey = a + " " + arg()
		case "-s":
			sched = arg()
		case "-b":
			flags = arg()
		case "-r":
			rs = arg()
		case "-w":
			weight = int32(atoi(t, where, arg()))
		case "-x":
			upper = uint32(atoi(t, where, arg()))
		case "-y":
			lower = uint32(atoi(t, where, arg()))
		case "-m", "-g", "-i", "-n":
		default:
			t.Fatalf("%s: the driver does not handle ipvsadm %s", where, a)
		}
	}
	if sched == "" {
		sched = "wlc" // ipvsadm's default, for -E as well
	}
	ks := k.services[svcKey]
	switch cmd {
	case "-A", "-E":
		if cmd == "-A" {
			vip, err := netip.ParseAddrPort(strings.Fields(svcKey)[1])
			require.NoError(t, err, where)
			ks = &kipvsService{svc: &Service{}, proto: proto, vip: vip,
				dests: map[netip.AddrPort]*Dest{}, trash: map[netip.AddrPort]*Dest{}}
			k.services[svcKey] = ks
			if k.first == nil {
				k.first = ks
			}
		}
		require.NoError(t, ks.svc.SetScheduler(sched), where)
		ks.svc.Flags = 0
		if flags != "" {
			f, err := ParseFlags(sched, flags)
			require.NoError(t, err, where)
			ks.svc.Flags = f
		}
		return
	}
	require.NotNil(t, ks, "%s: no service %s", where, svcKey)
	if !strings.Contains(rs, ":") || strings.HasSuffix(rs, "]") {
		rs = fmt.Sprintf("%s:%d", rs, ks.vip.Port()) // ipvsadm takes the service port
	}
	addr, err := netip.ParseAddrPort(rs)
	require.NoError(t, err, where)
	d := ks.dests[addr]
	switch cmd {
	case "-a":
		require.Nil(t, d, "%s: dest exists", where)
		if d = ks.trash[addr]; d == nil {
			d = &Dest{Addr: addr.Addr(), Port: addr.Port()}
		}
		delete(ks.trash, addr)
		d.SetWeight(weight, true)
		d.SetThresholds(upper, lower, ks.svc.Profile)
		ks.dests[addr] = d
		ks.svc.AddDest(d)
	case "-e":
		require.NotNil(t, d, "%s: no dest %s", where, addr)
		d.SetWeight(weight, false)
		d.SetThresholds(upper, lower, ks.svc.Profile)
		ks.svc.UpdDest(d)
	case "-d":
		require.NotNil(t, d, "%s: no dest %s", where, addr)
		require.True(t, ks.svc.DelDest(d))
		delete(ks.dests, addr)
		ks.trash[addr] = d
	}
}

func (k *kipvsDriver) conn(where string, args []string) {
	t := k.t
	client, err := netip.ParseAddr(args[0])
	require.NoError(t, err, where)
	count := atoi(t, where, args[1])
	ks := k.first
	ending, udp := "close", false
	for _, o := range args[2:] {
		key, val, _ := strings.Cut(o, "=")
		switch key {
		case "tcp":
		case "udp":
			udp = true
		case "close", "hold", "rst":
			ending = key
		case "sport":
			k.sport[client] = uint16(atoi(t, where, val))
		case "timeout", "gap":
		default:
			vip, err := netip.ParseAddrPort(o)
			require.NoError(t, err, "%s: option %q", where, o)
			ks = nil
			for _, s := range k.services {
				if s.vip == vip {
					ks = s
				}
			}
			require.NotNil(t, ks, "%s: no service %s", where, vip)
		}
	}
	for range count {
		k.seq++
		port := k.sport[client]
		if port == 0 {
			port = 10000
		}
		k.sport[client] = port + 1
		src := netip.AddrPortFrom(client, port)
		f := Flow{Proto: ks.proto, Src: client, SrcPort: port, Dst: ks.vip.Addr(), DstPort: ks.vip.Port()}
		d := ks.svc.Schedule(f, k.now)
		if d == nil {
			k.out = append(k.out, fmt.Sprintf("%d %s -> FAIL connection_refused", k.seq, src))
			continue
		}
		k.out = append(k.out, fmt.Sprintf("%d %s -> %s", k.seq, src, netip.AddrPortFrom(d.Addr, d.Port)))
		d.BindConn()
		c := &kipvsConn{client: client, dest: d}
		switch {
		case udp:
			c.expires = k.now.Add(udpLife)
		case ending == "hold":
			d.SetActive(true)
			c.active, c.held = true, true
		case ending == "rst":
			c.expires = k.now.Add(rstLife)
		default:
			c.expires = k.now.Add(closedLife)
		}
		k.conns = append(k.conns, c)
	}
}

// close ends held connections with a FIN handshake: they turn inactive and
// wait out TIME_WAIT.
func (k *kipvsDriver) close(args []string) {
	for _, c := range k.conns {
		if c.held && (len(args) == 0 || c.client.String() == args[0]) {
			c.dest.SetActive(false)
			c.active, c.held = false, false
			c.expires = k.now.Add(closedLife)
		}
	}
}

func atoi(t *testing.T, where, s string) int {
	n, err := strconv.Atoi(s)
	require.NoError(t, err, where)
	return n
}
