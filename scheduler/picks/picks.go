// Package picks runs one scheduler outside any lab: it builds a virtual
// service from destinations given as an operator would add them with
// ipvsadm -a, feeds it a cycle of client flows and reports each pick. It is
// the engine of `lvslab sched`, which teaches how each scheduler orders its
// choices and lets users check a configuration before deploying it.
package picks

import (
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/lvslab/lvslab/scheduler"
)

// Ending says what becomes of each picked connection; it drives the
// schedulers that weigh load (lc, wlc, sed, nq, ovf, lblc, lblcr, twos).
type Ending uint8

const (
	Active   Ending = iota // the connection stays open: ActiveConn
	Inactive               // it closes and waits out TIME_WAIT: InActConn
	Forget                 // nothing is counted
)

// ParseEnding maps --conn values to an Ending.
func ParseEnding(s string) (Ending, error) {
	switch s {
	case "active":
		return Active, nil
	case "inactive":
		return Inactive, nil
	case "none":
		return Forget, nil
	}
	return 0, fmt.Errorf("%q is not one of active, inactive, none", s)
}

// DestSpec is one --dest: ADDR:PORT[,w=N][,x=UPPER][,y=LOWER].
type DestSpec struct {
	Addr         netip.AddrPort
	Weight       int32
	Upper, Lower uint32
}

// ParseDest reads ADDR:PORT[,w=N][,x=UPPER][,y=LOWER] with ipvsadm's
// defaults and limits: weight 1, weights 0..65535, no -y above -x.
func ParseDest(s string) (DestSpec, error) {
	parts := strings.Split(s, ",")
	ap, err := netip.ParseAddrPort(parts[0])
	if err != nil {
		return DestSpec{}, fmt.Errorf("%q is not ADDR:PORT (IPv6 as [ADDR]:PORT)", parts[0])
	}
	d := DestSpec{Addr: netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), Weight: 1}
	seen := map[string]bool{}
	for _, p := range parts[1:] {
		key, val, ok := strings.Cut(p, "=")
		if !ok || seen[key] {
			return DestSpec{}, fmt.Errorf("%q is not one of w=N, x=UPPER, y=LOWER (each at most once)", p)
		}
		seen[key] = true
		switch key {
		case "w":
			n, err := strconv.ParseUint(val, 10, 16)
			if err != nil {
				return DestSpec{}, fmt.Errorf("weight %q is not a number 0..65535", val)
			}
			d.Weight = int32(n)
		case "x", "y":
			n, err := strconv.ParseUint(val, 10, 31)
			if err != nil {
				return DestSpec{}, fmt.Errorf("threshold %s=%q is not a number 0..2147483647", key, val)
			}
			if key == "x" {
				d.Upper = uint32(n)
			} else {
				d.Lower = uint32(n)
			}
		default:
			return DestSpec{}, fmt.Errorf("%q is not one of w=N, x=UPPER, y=LOWER", p)
		}
	}
	if d.Lower > d.Upper {
		return DestSpec{}, fmt.Errorf("lower threshold y=%d is above upper threshold x=%d (the kernel answers ERANGE)", d.Lower, d.Upper)
	}
	return d, nil
}

// FlowSpec is one --flow: SRC[:PORT][>DST[:PORT]]. A missing source prints
// as "-"; a missing source port counts up from 10000 for each use of the
// source address, as a client's ephemeral ports would.
type FlowSpec struct {
	Src, Dst         netip.Addr // invalid when not given
	SrcPort, DstPort uint16     // 0 when not given
}

// ParseFlow reads SRC[:PORT][>DST[:PORT]].
func ParseFlow(s string) (FlowSpec, error) {
	var f FlowSpec
	src, dst, hasDst := strings.Cut(s, ">")
	var err error
	if f.Src, f.SrcPort, err = parseEndpoint(src); err != nil {
		return FlowSpec{}, err
	}
	if hasDst {
		if f.Dst, f.DstPort, err = parseEndpoint(dst); err != nil {
			return FlowSpec{}, err
		}
	}
	return f, nil
}

func parseEndpoint(s string) (netip.Addr, uint16, error) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap(), ap.Port(), nil
	}
	if a, err := netip.ParseAddr(strings.Trim(s, "[]")); err == nil && a.Zone() == "" {
		return a.Unmap(), 0, nil
	}
	return netip.Addr{}, 0, fmt.Errorf("%q is not ADDR or ADDR:PORT (IPv6 as ADDR or [ADDR]:PORT)", s)
}

// Config is one run.
type Config struct {
	Scheduler string
	Dests     []DestSpec // in ipvsadm -a order: the kernel's list is reversed
	Flags     string     // --sched-flags, ipvsadm's -b list
	Flows     []FlowSpec // used in turn; none means one flow without addresses
	Conn      Ending
	Picks     int
	Seed      *uint64 // twos' random source; nil keeps the fixed default
	Profile   scheduler.Profile
}

// Pick is one scheduling decision.
type Pick struct {
	N    int
	Src  netip.Addr     // invalid when the flow had no source
	Dest netip.AddrPort // invalid when no destination was available
}

// DestTotal is where a dest stands after the run.
type DestTotal struct {
	Addr       netip.AddrPort
	Weight     int32
	Picks      int
	ActiveConn int32
	InActConn  int32
	Overloaded bool
}

// Result is a run's picks and final state.
type Result struct {
	Scheduler string
	Flags     []string
	Profile   scheduler.Profile
	Picks     []Pick
	Dests     []DestTotal // in the order given
}

// Run builds the service (empty, then one ipvsadm -a per dest, so history
// dependent schedulers like wrr start as on a real director) and picks.
func Run(cfg Config) (*Result, error) {
	svc := &scheduler.Service{Profile: cfg.Profile}
	if err := svc.SetScheduler(cfg.Scheduler); err != nil {
		return nil, fmt.Errorf("--scheduler %q: %w (one of %s)", cfg.Scheduler, scheduler.ErrUnknown, strings.Join(scheduler.Names, ", "))
	}
	if cfg.Flags != "" {
		f, err := scheduler.ParseFlags(cfg.Scheduler, cfg.Flags)
		if err != nil {
			return nil, fmt.Errorf("--sched-flags %q: %w", cfg.Flags, err)
		}
		svc.Flags = f
	}
	if cfg.Seed != nil {
		r := rand.New(rand.NewPCG(*cfg.Seed, 0))
		svc.Rand = r.Uint32
	}
	if cfg.Picks < 0 {
		return nil, fmt.Errorf("--picks %d: must not be negative", cfg.Picks)
	}
	dests := make([]*scheduler.Dest, len(cfg.Dests))
	index := map[*scheduler.Dest]int{}
	for i, ds := range cfg.Dests {
		for _, prev := range cfg.Dests[:i] {
			if prev.Addr == ds.Addr {
				return nil, fmt.Errorf("--dest %s: given twice (the kernel answers EEXIST)", ds.Addr)
			}
		}
		d := &scheduler.Dest{Addr: ds.Addr.Addr(), Port: ds.Addr.Port()}
		d.SetWeight(ds.Weight, true)
		d.SetThresholds(ds.Upper, ds.Lower, cfg.Profile)
		svc.AddDest(d)
		dests[i], index[d] = d, i
	}
	flows := cfg.Flows
	if len(flows) == 0 {
		flows = []FlowSpec{{}}
	}

	res := &Result{Scheduler: cfg.Scheduler, Flags: scheduler.FlagNames(cfg.Scheduler, svc.Flags), Profile: cfg.Profile}
	counts := make([]int, len(dests))
	ports := map[netip.Addr]uint16{}
	now := time.Unix(0, 0)
	for n := 1; n <= cfg.Picks; n++ {
		fs := flows[(n-1)%len(flows)]
		f := flowOf(fs, ports, dests)
		p := Pick{N: n, Src: fs.Src}
		if d := svc.Schedule(f, now); d != nil {
			p.Dest = netip.AddrPortFrom(d.Addr, d.Port)
			counts[index[d]]++
			switch cfg.Conn {
			case Active:
				d.BindConn()
				d.SetActive(true)
			case Inactive:
				d.BindConn()
			}
		}
		res.Picks = append(res.Picks, p)
	}
	for i, d := range dests {
		res.Dests = append(res.Dests, DestTotal{Addr: cfg.Dests[i].Addr, Weight: d.Weight, Picks: counts[i],
			ActiveConn: d.ActiveConns, InActConn: d.InactConns, Overloaded: d.Overloaded()})
	}
	return res, nil
}

// flowOf turns a FlowSpec into the first packet of a TCP connection. Missing
// addresses are the unspecified address of the dests' family; a missing
// source port is the source's next ephemeral port.
func flowOf(fs FlowSpec, ports map[netip.Addr]uint16, dests []*scheduler.Dest) scheduler.Flow {
	unspecified := netip.IPv4Unspecified()
	if len(dests) > 0 && dests[0].Addr.Is6() {
		unspecified = netip.IPv6Unspecified()
	}
	f := scheduler.Flow{Proto: 6, Src: fs.Src, SrcPort: fs.SrcPort, Dst: fs.Dst, DstPort: fs.DstPort}
	if !f.Src.IsValid() {
		f.Src = unspecified
	}
	if !f.Dst.IsValid() {
		f.Dst = unspecified
	}
	if f.SrcPort == 0 {
		p, ok := ports[f.Src]
		if !ok {
			p = 10000
		}
		f.SrcPort, ports[f.Src] = p, p+1
	}
	return f
}

func (p Pick) String() string {
	src, dest := "-", "none"
	if p.Src.IsValid() {
		src = p.Src.String()
	}
	if p.Dest.IsValid() {
		dest = p.Dest.String()
	}
	return fmt.Sprintf("%d %s %s", p.N, src, dest)
}

// WriteText prints one line per pick: "N SRC ADDR:PORT", with "-" for a
// flow without source and "none" when no destination was available.
func (r *Result) WriteText(w io.Writer) error {
	for _, p := range r.Picks {
		if _, err := fmt.Fprintln(w, p); err != nil {
			return err
		}
	}
	return nil
}

type jsonPick struct {
	N    int     `json:"n"`
	Src  *string `json:"src"`
	Dest *string `json:"dest"`
}

type jsonDest struct {
	Address    string `json:"address"`
	Weight     int32  `json:"weight"`
	Picks      int    `json:"picks"`
	ActiveConn int32  `json:"active_conn"`
	InActConn  int32  `json:"inact_conn"`
	Overloaded bool   `json:"overloaded"`
}

type jsonResult struct {
	Scheduler     string     `json:"scheduler"`
	Flags         []string   `json:"flags"`
	KernelProfile string     `json:"kernel_profile"`
	Picks         []jsonPick `json:"picks"`
	Dests         []jsonDest `json:"dests"`
}

// WriteJSON writes the run as one JSON document: every pick (src and dest
// null when absent) and each dest's final counters.
func (r *Result) WriteJSON(w io.Writer) error {
	out := jsonResult{Scheduler: r.Scheduler, Flags: r.Flags, KernelProfile: r.Profile.String(),
		Picks: []jsonPick{}, Dests: []jsonDest{}}
	if out.Flags == nil {
		out.Flags = []string{}
	}
	for _, p := range r.Picks {
		jp := jsonPick{N: p.N}
		if p.Src.IsValid() {
			s := p.Src.String()
			jp.Src = &s
		}
		if p.Dest.IsValid() {
			s := p.Dest.String()
			jp.Dest = &s
		}
		out.Picks = append(out.Picks, jp)
	}
	for _, d := range r.Dests {
		out.Dests = append(out.Dests, jsonDest{Address: d.Addr.String(), Weight: d.Weight, Picks: d.Picks,
			ActiveConn: d.ActiveConn, InActConn: d.InActConn, Overloaded: d.Overloaded})
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}
