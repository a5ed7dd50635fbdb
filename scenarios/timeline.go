package scenarios

import (
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/lvslab/lvslab/loadgen"
	"github.com/lvslab/lvslab/loadgen/realserver"
	"github.com/lvslab/lvslab/loadgen/wire"
	"github.com/lvslab/lvslab/topo"
)

// Timeline is the part of a scenario that happens to a built lab: the
// operator's own ipvsadm commands, the load phases, the faults and what the
// run must show.
type Timeline struct {
	// IPVSADM holds ipvsadm-restore lines (-A, -a, …) loaded into the
	// director after the structured services.
	IPVSADM string   `yaml:"ipvsadm"`
	Load    []Phase  `yaml:"load"`
	Faults  []Fault  `yaml:"faults"`
	Expect  []string `yaml:"expect"`
}

// Server is what a real server node runs.
type Server struct {
	Kind string `yaml:"kind"` // http (default) | tcp | udp | command
	// Port, or Ports for several, is where the server listens; by default
	// every port its services send to. One server serves all of them (one
	// identity, capacity and failure mode): the real server of a port-0
	// or fwmark service, which gets each client's own destination port.
	Port           int    `yaml:"port"`
	Ports          []int  `yaml:"ports"`
	ResponseBytes  int    `yaml:"response_bytes"`
	ServiceTime    string `yaml:"service_time"` // 2ms, uniform:1ms-3ms, exp:2ms
	MaxConcurrency int    `yaml:"max_concurrency"`
	MaxQueue       int    `yaml:"max_queue"`
	Command        string `yaml:"command"` // kind command: a program run in the node
}

// Persistence makes a service sticky (ipvsadm -p, -M).
type Persistence struct {
	Timeout string `yaml:"timeout"` // 360s
	Netmask string `yaml:"netmask"` // 255.255.255.255
}

// HealthCheck is how the director checks a service's real servers
// (keepalived's semantics).
type HealthCheck struct {
	Kind   string `yaml:"kind"` // tcp | http | command
	Port   int    `yaml:"port"` // default: the real server's port
	Path   string `yaml:"path"`
	Status int    `yaml:"status"`
	// Digest is the MD5 of the body an http check expects, 32 hex digits
	// (keepalived's HTTP_GET url digest; genhash prints it).
	Digest    string `yaml:"digest"`
	Command   string `yaml:"command"`
	Interval  string `yaml:"interval"`
	Timeout   string `yaml:"timeout"`
	Rise      int    `yaml:"rise"`
	Fall      int    `yaml:"fall"`
	Quiescent *bool  `yaml:"quiescent"`
	// SorryServer is a node the director sends the service's clients to
	// while every real server is down (keepalived's sorry_server): added
	// with weight 1 when the last one goes down, removed when one is back.
	SorryServer string `yaml:"sorry_server"`
}

// Phase is one load phase.
type Phase struct {
	Name string `yaml:"name"`
	From string `yaml:"from"` // client node(s), comma-separated
	// Target is VIP:PORT, or several: ports after the first reuse the
	// address before them (192.168.1.110:80,443 or
	// 192.168.1.110:80,192.168.1.111:80); default the first service.
	Target      string `yaml:"target"`
	Kind        string `yaml:"kind"` // http | tcp | udp; default from the target service
	Rate        string `yaml:"rate"` // open loop: 2000/s
	Arrival     string `yaml:"arrival"`
	Concurrency int    `yaml:"concurrency"`
	// NewConnectionPerRequest is the default: LVS schedules connections.
	NewConnectionPerRequest *bool  `yaml:"new_connection_per_request"`
	RequestBytes            int    `yaml:"request_bytes"`
	Duration                string `yaml:"duration"`
	Timeout                 string `yaml:"timeout"`
	Path                    string `yaml:"path"`
	At                      string `yaml:"at"` // start time; default when the previous phase ends
}

// Fault is one event on the timeline: at a time (or at the start of a
// phase), on one target, restored after For when given.
type Fault struct {
	At  string `yaml:"at"`  // 10s, or "phase NAME"
	For string `yaml:"for"` // restore after

	Kill    string       `yaml:"kill"`    // the server stops: port closed, connections reset
	Restore string       `yaml:"restore"` // healthy again (after kill, hang, slow, …)
	Hang    string       `yaml:"hang"`    // accepts, never answers
	Slow    string       `yaml:"slow"`    // answers after Delay
	Reset   string       `yaml:"reset"`   // answers with a TCP reset
	Error   string       `yaml:"error"`   // answers with Status
	Refuse  string       `yaml:"refuse"`  // listening socket closed
	Weight  *WeightFault `yaml:"weight"`
	Add     string       `yaml:"add"`    // a standby real server joins its services
	Remove  string       `yaml:"remove"` // a real server leaves its services
	Link    string       `yaml:"link"`   // a node's links: down, or loss, rate and delay

	Down bool   `yaml:"down"` // link: carrier off
	Loss string `yaml:"loss"` // link: 5% of packets dropped both ways (nftables)
	Rate string `yaml:"rate"` // link: egress limited to 10mbit (tbf)

	// Delay is how long a slow server waits before it answers, or, on a
	// link, how long each packet takes longer to cross it, each way
	// (netem, or lvslab's userspace delay line).
	Delay string `yaml:"delay"`
	// Jitter spreads a link's delay uniformly over delay ± jitter; the
	// link does not reorder packets unless Reorder says it may.
	Jitter  string `yaml:"jitter"`
	Reorder bool   `yaml:"reorder"`
	Status  int    `yaml:"status"` // error
}

// WeightFault changes a real server's weight in every service it serves.
type WeightFault struct {
	Node  string `yaml:"node"`
	Value int    `yaml:"value"`
}

// FaultAction is what a fault does.
type FaultAction string

// The fault actions.
const (
	Kill    FaultAction = "kill"
	Restore FaultAction = "restore"
	Hang    FaultAction = "hang"
	Slow    FaultAction = "slow"
	Reset   FaultAction = "reset"
	ErrorOf FaultAction = "error"
	Refuse  FaultAction = "refuse"
	Weight  FaultAction = "weight"
	Add     FaultAction = "add"
	Remove  FaultAction = "remove"
	Link    FaultAction = "link"
)

// Action returns the fault's one action and its target node.
func (f *Fault) Action() (FaultAction, string, int) {
	var act FaultAction
	var target string
	n := 0
	for _, c := range []struct {
		a FaultAction
		t string
	}{{Kill, f.Kill}, {Restore, f.Restore}, {Hang, f.Hang}, {Slow, f.Slow}, {Reset, f.Reset}, {ErrorOf, f.Error},
		{Refuse, f.Refuse}, {Add, f.Add}, {Remove, f.Remove}, {Link, f.Link}} {
		if c.t != "" {
			act, target = c.a, c.t
			n++
		}
	}
	if f.Weight != nil {
		act, target = Weight, f.Weight.Node
		n++
	}
	return act, target, n
}

// RealServerFault is the failure mode a server-side fault switches to.
func (f *Fault) RealServerFault() realserver.Fault {
	act, _, _ := f.Action()
	switch act {
	case Hang:
		return realserver.Fault{Mode: realserver.Hang}
	case Slow:
		d, _ := time.ParseDuration(f.Delay)
		return realserver.Fault{Mode: realserver.Slow, Delay: d}
	case Reset:
		return realserver.Fault{Mode: realserver.Reset}
	case ErrorOf:
		st := f.Status
		if st == 0 {
			st = realserver.DefaultErrorStatus
		}
		return realserver.Fault{Mode: realserver.ErrorStatus, Status: st}
	case Refuse:
		return realserver.Fault{Mode: realserver.Refuse}
	}
	return realserver.Fault{Mode: realserver.Healthy}
}

// DefaultPhaseDuration is a phase's length when it names none.
const DefaultPhaseDuration = 10 * time.Second

// checkTimeline checks everything after the topology, at its position.
func (s *Scenario) checkTimeline() Errors {
	var es Errors
	bad := func(path, object, format string, args ...any) {
		es = append(es, s.src.errorAt(path, object, fmt.Sprintf(format, args...)))
	}
	roles := map[string]string{}
	for _, n := range s.Nodes {
		roles[n.Name] = n.Role
	}
	for i, n := range s.Nodes {
		if n.Server == nil {
			continue
		}
		path, obj := fmt.Sprintf("nodes[%d].server", i), fmt.Sprintf("node %q", n.Name)
		if n.Role != string(topo.RealServer) {
			bad(path, obj, "only a realserver runs a server (this node is a %s)", n.Role)
		}
		sv := n.Server
		switch sv.Kind {
		case "", "http", "tcp", "udp":
			if sv.Command != "" {
				bad(path+".command", obj, "command belongs to kind: command")
			}
		case "command":
			if strings.TrimSpace(sv.Command) == "" {
				bad(path+".command", obj, "kind command needs the command to run")
			}
		default:
			bad(path+".kind", obj, "server kind %q is not one of http, tcp, udp, command", sv.Kind)
		}
		if sv.Port < 0 || sv.Port > 65535 {
			bad(path+".port", obj, "port %d is outside 1–65535", sv.Port)
		}
		if sv.Port != 0 && len(sv.Ports) > 0 {
			bad(path+".ports", obj, "give port or ports, not both")
		}
		for j, p := range sv.Ports {
			switch {
			case p < 1 || p > 65535:
				bad(fmt.Sprintf("%s.ports[%d]", path, j), obj, "port %d is outside 1–65535", p)
			case slices.Contains(sv.Ports[:j], p):
				bad(fmt.Sprintf("%s.ports[%d]", path, j), obj, "port %d is listed twice", p)
			}
		}
		if sv.ResponseBytes < 0 || (sv.Kind == "udp" && sv.ResponseBytes > realserver.MaxUDPResponse) {
			bad(path+".response_bytes", obj, "response_bytes %d is outside 0–%d", sv.ResponseBytes, realserver.MaxUDPResponse)
		}
		if _, err := realserver.ParseDist(sv.ServiceTime); err != nil {
			bad(path+".service_time", obj, "%v", err)
		}
		if sv.MaxConcurrency < 0 {
			bad(path+".max_concurrency", obj, "max_concurrency %d is negative", sv.MaxConcurrency)
		}
		if sv.MaxQueue < 0 {
			bad(path+".max_queue", obj, "max_queue %d is negative", sv.MaxQueue)
		}
	}
	for i, sv := range s.Services {
		path, obj := fmt.Sprintf("services[%d]", i), "service "+sv.VIP.String()
		if p := sv.Persistence; p != nil {
			if _, err := seconds(p.Timeout); p.Timeout != "" && err != nil {
				bad(path+".persistence.timeout", obj, "persistence timeout %q: %v", p.Timeout, err)
			}
			if p.Netmask != "" && !isNetmask(p.Netmask) {
				bad(path+".persistence.netmask", obj, "persistence netmask %q is not a netmask like 255.255.255.0", p.Netmask)
			}
		}
		if hc := sv.HealthCheck; hc != nil {
			hpath := path + ".health_check"
			if !slices.Contains([]string{"tcp", "http", "command"}, hc.Kind) {
				bad(hpath+".kind", obj, "health check kind %q is not one of tcp, http, command", hc.Kind)
			}
			for _, d := range []struct{ key, v string }{{"interval", hc.Interval}, {"timeout", hc.Timeout}} {
				if _, err := duration(d.v, 0); err != nil {
					bad(hpath+"."+d.key, obj, "%s %q: %v", d.key, d.v, err)
				}
			}
			if hc.Digest != "" && !md5Hex.MatchString(hc.Digest) {
				bad(hpath+".digest", obj, "digest %q is not an MD5 digest (32 hex digits)", hc.Digest)
			}
			for _, f := range []struct {
				key string
				set bool
			}{{"path", hc.Path != ""}, {"status", hc.Status != 0}, {"digest", hc.Digest != ""}} {
				if f.set && hc.Kind != "http" {
					bad(hpath+"."+f.key, obj, "%s belongs to kind: http", f.key)
				}
			}
			if hc.Kind == "command" && strings.TrimSpace(hc.Command) == "" {
				bad(hpath+".command", obj, "health check kind command needs the command to run")
			}
			if hc.Port < 0 || hc.Port > 65535 {
				bad(hpath+".port", obj, "port %d is outside 1–65535", hc.Port)
			}
			if hc.Rise < 0 || hc.Fall < 0 {
				bad(hpath, obj, "rise and fall count checks, at least 1")
			}
			if hc.SorryServer != "" {
				if msg := s.sorryProblem(sv); msg != "" {
					bad(hpath+".sorry_server", obj, "sorry server %q %s", hc.SorryServer, msg)
				}
			}
		}
	}
	for i, p := range s.Load {
		path := fmt.Sprintf("load[%d]", i)
		obj := fmt.Sprintf("load phase %q", p.Name)
		if p.Name == "" {
			obj = fmt.Sprintf("load phase %d", i+1)
		}
		for _, from := range p.Froms() {
			switch r, ok := roles[from]; {
			case !ok:
				bad(path+".from", obj, "client %q is not a node", from)
			case r != string(topo.Client):
				bad(path+".from", obj, "node %q is a %s, not a client", from, r)
			}
		}
		if p.Target != "" {
			if _, err := p.Targets(); err != nil {
				bad(path+".target", obj, "%v", err)
			}
		} else if len(s.Services) == 0 {
			bad(path, obj, "needs a target (the scenario has no services)")
		}
		if p.Kind != "" {
			if _, err := wire.ParseKind(p.Kind); err != nil {
				bad(path+".kind", obj, "%v", err)
			}
		}
		switch {
		case p.Rate != "":
			if r, err := loadgen.ParseRate(p.Rate); err != nil || r <= 0 {
				bad(path+".rate", obj, "rate %q is not a rate like 2000/s", p.Rate)
			}
		case p.Concurrency <= 0:
			bad(path, obj, "needs rate (open loop, 2000/s) or concurrency (closed loop)")
		}
		if p.Concurrency < 0 {
			bad(path+".concurrency", obj, "concurrency %d is negative", p.Concurrency)
		}
		if !slices.Contains([]string{"", "constant", "poisson"}, p.Arrival) {
			bad(path+".arrival", obj, "arrival %q is not constant or poisson", p.Arrival)
		}
		if p.RequestBytes < 0 {
			bad(path+".request_bytes", obj, "request_bytes %d is negative", p.RequestBytes)
		}
		for _, d := range []struct{ key, v string }{{"duration", p.Duration}, {"timeout", p.Timeout}, {"at", p.At}} {
			if _, err := duration(d.v, 0); err != nil {
				bad(path+"."+d.key, obj, "%s %q: %v", d.key, d.v, err)
			}
		}
	}
	es = append(es, s.checkKinds()...)
	for i, f := range s.Faults {
		path, obj := fmt.Sprintf("faults[%d]", i), fmt.Sprintf("fault %d", i+1)
		act, target, n := f.Action()
		switch {
		case n == 0:
			bad(path, obj, "says nothing to do (kill, restore, hang, slow, reset, error, refuse, weight, add, remove or link)")
			continue
		case n > 1:
			bad(path, obj, "does more than one thing; give each its own fault")
			continue
		}
		obj = fmt.Sprintf("fault %s %s", act, target)
		if _, err := s.faultAt(f.At, 1); err != nil {
			bad(path+".at", obj, "%v", err)
		}
		if _, err := duration(f.For, 0); err != nil {
			bad(path+".for", obj, "for %q: %v", f.For, err)
		}
		if f.For != "" && slices.Contains([]FaultAction{Restore, Weight, Add, Remove}, act) {
			bad(path+".for", obj, "%s has no for: (give the opposite fault its own time)", act)
		}
		if f.Delay != "" && act != Slow && act != Link {
			bad(path+".delay", obj, "delay belongs to slow (a server's answer) or link (the node's links)")
		}
		if f.Jitter != "" && act != Link {
			bad(path+".jitter", obj, "jitter belongs to a link's delay")
		}
		if f.Reorder && act != Link {
			bad(path+".reorder", obj, "reorder belongs to a link's delay")
		}
		if act == Slow {
			if d, err := duration(f.Delay, 0); err != nil || d <= 0 {
				bad(path+".delay", obj, "slow needs a delay like 200ms")
			}
		}
		if act == Link {
			es = append(es, s.checkLink(path, obj, &f)...)
			es = append(es, s.checkDelayOverlap(path, obj, i)...)
		} else if f.Down || f.Loss != "" || f.Rate != "" {
			bad(path, obj, "down, loss and rate belong to link")
		}
		if f.Status != 0 && (act != ErrorOf || f.Status < 100 || f.Status > 999) {
			bad(path+".status", obj, "status %d belongs to error, as a status 100–999", f.Status)
		}
		key := string(act)
		switch r, ok := roles[target]; {
		case !ok:
			bad(path+"."+key, obj, "%q is not a node", target)
		case act == Link && r != string(topo.RealServer) && r != string(topo.Client):
			bad(path+"."+key, obj, "node %q is a %s: link faults act on clients and real servers", target, r)
		case (act == Kill || act == Restore) && r == string(topo.Director):
		case act != Link && r != string(topo.RealServer):
			bad(path+"."+key, obj, "node %q is a %s, not a realserver", target, r)
		case (act == Add || act == Remove || act == Weight) && !s.inAnyService(target):
			bad(path+"."+key, obj, "node %q is a real server of no service", target)
		}
		if act == Weight && (f.Weight.Value < 0 || f.Weight.Value > 65535) {
			bad(path+".weight.value", obj, "weight %d is outside 0–65535", f.Weight.Value)
		}
	}
	for i, text := range s.Expect {
		path, obj := fmt.Sprintf("expect[%d]", i), fmt.Sprintf("expectation %q", text)
		e, err := ParseExpectation(text)
		switch {
		case err != nil:
			bad(path, obj, "%v", err)
		case e.Phase != "" && !slices.Contains(s.phaseNames(), e.Phase):
			bad(path, obj, "no load phase is called %q", e.Phase)
		}
	}
	return es
}

// checkKinds finds load phases whose requests the built-in servers behind
// their target would not understand (tcp requests to an http server).
func (s *Scenario) checkKinds() Errors {
	lab := s.Lab()
	if lab == nil {
		return nil
	}
	var es Errors
	for i, p := range s.Load {
		targets, err := p.Targets()
		if err != nil {
			continue
		}
		if len(targets) == 0 && len(lab.Services) > 0 {
			targets = []netip.AddrPort{s.defaultTarget(lab)}
		}
		var named []string // each real server once, though several targets reach it
		for _, ap := range targets {
			svc := -1
			for j := range lab.Services {
				if s.aims(lab, j, ap) {
					svc = j
					break
				}
			}
			if svc < 0 || svc >= len(s.Services) {
				continue
			}
			kind := p.Kind
			if kind == "" {
				kind = defaultKind(lab.Services[svc].Protocol)
			}
			for _, rs := range s.Services[svc].RealServers {
				for _, n := range s.Nodes {
					if n.Name != rs.Node || slices.Contains(named, n.Name) {
						continue
					}
					sk := defaultKind(lab.Services[svc].Protocol)
					if n.Server != nil && n.Server.Kind != "" {
						sk = n.Server.Kind
					}
					if sk != kind && sk != "command" {
						named = append(named, n.Name)
						es = append(es, s.src.errorAt(fmt.Sprintf("load[%d]", i), fmt.Sprintf("load phase %q", p.Name),
							fmt.Sprintf("sends %s requests, but real server %q serves %s (give it server: {kind: %s})", kind, n.Name, sk, kind)))
					}
				}
			}
		}
	}
	return es
}

// defaultKind is the load and built-in server a service protocol takes.
func defaultKind(protocol string) string {
	if protocol == "udp" {
		return "udp"
	}
	return "http"
}

var md5Hex = regexp.MustCompile(`^[0-9a-fA-F]{32}$`)

var rateRE = regexp.MustCompile(`^[0-9]+(\.[0-9]+)?(bit|kbit|mbit|gbit)$`)

// checkLink checks a link fault: down alone, or any of loss, rate and
// delay (with its jitter).
func (s *Scenario) checkLink(path, obj string, f *Fault) Errors {
	var es Errors
	bad := func(p, format string, args ...any) {
		es = append(es, s.src.errorAt(p, obj, fmt.Sprintf(format, args...)))
	}
	impaired := f.Loss != "" || f.Rate != "" || f.Delay != "" || f.Jitter != "" || f.Reorder
	if f.Down == impaired {
		bad(path, "link takes down: true, or any of loss: 5%%, rate: 10mbit and delay: 20ms (with jitter: 5ms)")
	}
	if f.Delay != "" || f.Jitter != "" || f.Reorder {
		_, err := f.LinkDelay()
		var le *linkDelayError
		switch {
		case errors.As(err, &le):
			bad(path+"."+le.key, "%v", le.msg)
		case err != nil:
			bad(path, "%v", err)
		}
	}
	if f.Loss != "" {
		if _, err := lossPercent(f.Loss); err != nil {
			bad(path+".loss", "loss %q: %v", f.Loss, err)
		}
	}
	if f.Rate != "" && !rateRE.MatchString(f.Rate) {
		bad(path+".rate", "rate %q is not a rate like 10mbit (bit, kbit, mbit, gbit)", f.Rate)
	}
	return es
}

// checkDelayOverlap refuses a link delay on a node whose links an earlier
// fault still delays then: a node's links take one delay at a time.
func (s *Scenario) checkDelayOverlap(path, obj string, i int) Errors {
	valid := func(f *Fault) bool {
		_, err := f.LinkDelay()
		return f.Delay != "" && !f.Down && err == nil
	}
	f := &s.Faults[i]
	if !valid(f) {
		return nil // its own problem is reported
	}
	at, length := s.FaultTimes(f, 1)
	for j := range i {
		g := &s.Faults[j]
		if g.Link != f.Link || !valid(g) {
			continue
		}
		gAt, gLength := s.FaultTimes(g, 1)
		if (gLength == 0 || at < gAt+gLength) && (length == 0 || gAt < at+length) {
			return Errors{s.src.errorAt(path+".delay", obj, fmt.Sprintf("%s's links are still delayed by fault %d then (one delay at a time)", f.Link, j+1))}
		}
	}
	return nil
}

// LinkDelay is what a link fault's delay and jitter ask of the link.
type LinkDelay struct {
	Delay, Jitter time.Duration
	Reorder       bool
}

type linkDelayError struct{ key, msg string }

func (e *linkDelayError) Error() string { return e.msg }

// LinkDelay reads the fault's delay and jitter as a link's (zero when the
// fault delays nothing). Jitter needs a delay at least as long: a packet
// cannot leave before it arrived.
func (f *Fault) LinkDelay() (LinkDelay, error) {
	var d LinkDelay
	var err error
	if f.Delay == "" {
		switch {
		case f.Jitter != "":
			return d, &linkDelayError{"jitter", "jitter needs a delay (delay: 20ms, jitter: 5ms)"}
		case f.Reorder:
			return d, &linkDelayError{"reorder", "reorder needs a delay with jitter (delay: 20ms, jitter: 5ms)"}
		}
		return d, nil
	}
	if d.Delay, err = duration(f.Delay, 0); err != nil {
		return d, &linkDelayError{"delay", fmt.Sprintf("delay %q: %v", f.Delay, err)}
	}
	if d.Jitter, err = duration(f.Jitter, 0); err != nil {
		return d, &linkDelayError{"jitter", fmt.Sprintf("jitter %q: %v", f.Jitter, err)}
	}
	if d.Jitter > d.Delay {
		return d, &linkDelayError{"jitter", fmt.Sprintf("jitter %s exceeds the delay %s (a packet cannot leave before it arrived)", d.Jitter, d.Delay)}
	}
	if f.Reorder && d.Jitter == 0 {
		return d, &linkDelayError{"reorder", "reorder needs jitter: with one delay for all, no packet overtakes another"}
	}
	d.Reorder = f.Reorder
	return d, nil
}

// lossPercent reads "5%" as 5.
func lossPercent(s string) (int, error) {
	v, ok := strings.CutSuffix(s, "%")
	n, err := strconv.Atoi(v)
	if !ok || err != nil || n < 1 || n > 100 {
		return 0, fmt.Errorf("want a whole percentage 1%%–100%%")
	}
	return n, nil
}

// phaseNames are the load phases' names as the report gives them: an
// unnamed phase is "phase N".
func (s *Scenario) phaseNames() []string {
	names := make([]string, len(s.Load))
	for i, p := range s.Load {
		names[i] = p.NameOf(i)
	}
	return names
}

// NameOf is the name of phase i in the report.
func (p *Phase) NameOf(i int) string {
	if p.Name == "" {
		return fmt.Sprintf("phase %d", i+1)
	}
	return p.Name
}

// Targets reads the phase's target list (none when it names none): each
// comma-separated entry is ADDRESS:PORT, or a PORT on the address before it.
func (p *Phase) Targets() ([]netip.AddrPort, error) {
	if p.Target == "" {
		return nil, nil
	}
	var out []netip.AddrPort
	var addr netip.Addr
	for item := range strings.SplitSeq(p.Target, ",") {
		item = strings.TrimSpace(item)
		ap, err := netip.ParseAddrPort(item)
		if err != nil && addr.IsValid() {
			if port, perr := strconv.ParseUint(item, 10, 16); perr == nil {
				ap, err = netip.AddrPortFrom(addr, uint16(port)), nil
			}
		}
		switch {
		case err != nil || !ap.Addr().Is4() || ap.Port() == 0:
			return nil, fmt.Errorf("target %q is not an address and port like 192.168.1.110:80 (or several: 192.168.1.110:80,443)", p.Target)
		case slices.Contains(out, ap):
			return nil, fmt.Errorf("target %q names %s twice", p.Target, ap)
		}
		addr = ap.Addr()
		out = append(out, ap)
	}
	return out, nil
}

// Froms lists the phase's client nodes.
func (p *Phase) Froms() []string {
	var out []string
	for f := range strings.SplitSeq(p.From, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func (s *Scenario) inAnyService(node string) bool {
	for _, sv := range s.Services {
		for _, rs := range sv.RealServers {
			if rs.Node == node {
				return true
			}
		}
	}
	return false
}

// faultAt reads a fault's time: a duration from the start of the load, or
// "phase NAME" for the start of a phase; durations are multiplied by scale.
func (s *Scenario) faultAt(at string, scale float64) (time.Duration, error) {
	if name, ok := strings.CutPrefix(at, "phase "); ok {
		name = strings.TrimSpace(name)
		starts, _ := s.PhaseStarts(scale)
		for i, p := range s.Load {
			if p.Name == name {
				return starts[i], nil
			}
		}
		return 0, fmt.Errorf("at %q: no load phase is called %q", at, name)
	}
	if at == "" {
		return 0, fmt.Errorf("needs at: (a time like 10s, or \"phase NAME\")")
	}
	d, err := duration(at, 0)
	if err != nil {
		return 0, fmt.Errorf("at %q: %v", at, err)
	}
	return scaled(d, scale), nil
}

// PhaseStarts returns when each phase starts and the timeline's end (the
// last phase's end), with every duration multiplied by scale.
func (s *Scenario) PhaseStarts(scale float64) ([]time.Duration, time.Duration) {
	var starts []time.Duration
	var next, end time.Duration
	for _, p := range s.Load {
		start := next
		if at, err := duration(p.At, 0); err == nil && p.At != "" {
			start = scaled(at, scale)
		}
		d := p.DurationOf(scale)
		starts = append(starts, start)
		next = start + d
		end = max(end, next)
	}
	return starts, end
}

// DurationOf is the phase's length, scaled.
func (p *Phase) DurationOf(scale float64) time.Duration {
	d, err := duration(p.Duration, DefaultPhaseDuration)
	if err != nil {
		d = DefaultPhaseDuration
	}
	return scaled(d, scale)
}

// FaultTimes returns when a fault starts and how long it lasts (0: it is
// not restored), with durations multiplied by scale.
func (s *Scenario) FaultTimes(f *Fault, scale float64) (at, length time.Duration) {
	at, _ = s.faultAt(f.At, scale)
	length, _ = duration(f.For, 0)
	return at, scaled(length, scale)
}

func scaled(d time.Duration, scale float64) time.Duration {
	return time.Duration(float64(d) * scale)
}

// duration reads a non-negative Go duration; "" is def.
func duration(s string, def time.Duration) (time.Duration, error) {
	if s == "" {
		return def, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("not a duration like 10s or 500ms")
	}
	if d < 0 {
		return 0, fmt.Errorf("is negative")
	}
	return d, nil
}

// seconds reads a persistence timeout in whole seconds ("360s" or "360").
func seconds(s string) (int, error) {
	var n int
	if _, err := fmt.Sscanf(s, "%d", &n); err == nil && fmt.Sprint(n) == s {
		if n <= 0 {
			return 0, fmt.Errorf("must be positive")
		}
		return n, nil
	}
	d, err := duration(s, 0)
	if err != nil {
		return 0, err
	}
	if d < time.Second || d%time.Second != 0 {
		return 0, fmt.Errorf("must be whole seconds, at least 1s")
	}
	return int(d / time.Second), nil
}

// isNetmask reports whether s is an IPv4 netmask: ones, then zeros.
func isNetmask(s string) bool {
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is4() {
		return false
	}
	b := a.As4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	inv := ^v
	return inv&(inv+1) == 0
}
