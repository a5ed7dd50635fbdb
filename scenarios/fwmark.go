package scenarios

// Firewall-mark services in a scenario. A structured service with fwmark: N
// covers the addresses in vip (one, or a list) and, optionally, the ports
// in ports and the protocol in protocol: the runner loads the marking rule
// that operators write by hand (ip daddr {…} tcp dport {…} meta mark set N)
// into the director's namespace, in table ip lvslab-marks at the mangle
// priority, before the director starts. Every VIP goes on the director,
// and on the lo of its DR and TUN real servers, as for address services.
// An ipvsadm block's -f services get no rule: the director node's
// nftables field carries the operator's own ruleset, loaded the same way
// (any node may have one: a real server's redirect, a client's filter).

import (
	"bytes"
	"fmt"
	"net/netip"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/lvslab/lvslab/topo"
)

// OneOrMore is a value a file writes as one scalar or as a list of them
// (vip: 192.168.1.110, or vip: [192.168.1.110, 192.168.1.111]).
type OneOrMore []string

// UnmarshalYAML reads a scalar or a list of scalars; numbers keep their
// text (ports: [80, 443, 8000-8010]).
func (o *OneOrMore) UnmarshalYAML(unmarshal func(any) error) error {
	var v any
	if err := unmarshal(&v); err != nil {
		return err
	}
	switch v := v.(type) {
	case nil:
		*o = nil
	case []any:
		*o = make(OneOrMore, len(v))
		for i, e := range v {
			(*o)[i] = fmt.Sprint(e)
		}
	default:
		*o = OneOrMore{fmt.Sprint(v)}
	}
	return nil
}

// String is the values as written, comma-separated.
func (o OneOrMore) String() string { return strings.Join(o, ", ") }

// MarkTable is the table of the structured services' marking rules in the
// director's namespace.
const MarkTable = "lvslab-marks"

// markRule is what a structured fwmark service marks.
type markRule struct {
	mark     uint32
	vips     []netip.Addr
	ports    []string // "80", "8000-8010"
	protocol string   // tcp | udp | sctp; any of them when empty
}

// markRuleOf reads the marking rule of service i (a fwmark service), each
// problem at its place.
func (s *Scenario) markRuleOf(i int, bad func(path, format string, args ...any)) markRule {
	sv := s.Services[i]
	path := fmt.Sprintf("services[%d]", i)
	r := markRule{mark: sv.FWMark, protocol: sv.Protocol}
	for k, v := range sv.VIP {
		a, err := netip.ParseAddr(v)
		if err != nil || !a.Is4() {
			bad(fmt.Sprintf("%s.vip[%d]", path, k), "vip %q of a fwmark service is not an IPv4 address (a fwmark service covers addresses; its ports go in ports:)", v)
			continue
		}
		if slices.Contains(r.vips, a) {
			bad(fmt.Sprintf("%s.vip[%d]", path, k), "vip %s is listed twice", a)
			continue
		}
		r.vips = append(r.vips, a)
	}
	if sv.Protocol != "" && !slices.Contains([]string{"tcp", "udp", "sctp"}, sv.Protocol) {
		bad(path+".protocol", "protocol %q is not tcp, udp or sctp", sv.Protocol)
	}
	for k, p := range sv.Ports {
		lo, hi, isRange := strings.Cut(p, "-")
		a, err1 := strconv.ParseUint(strings.TrimSpace(lo), 10, 16)
		b, err2 := a, error(nil)
		if isRange {
			b, err2 = strconv.ParseUint(strings.TrimSpace(hi), 10, 16)
		}
		if err1 != nil || err2 != nil || a == 0 || b < a {
			bad(fmt.Sprintf("%s.ports[%d]", path, k), "port %q is not a port (1–65535) or a range like 8000-8010", p)
			continue
		}
		if isRange {
			r.ports = append(r.ports, fmt.Sprintf("%d-%d", a, b))
		} else {
			r.ports = append(r.ports, strconv.FormatUint(a, 10))
		}
	}
	if len(sv.Ports) > 0 || sv.Protocol != "" {
		if len(sv.VIP) == 0 {
			bad(path+".fwmark", "ports and protocol narrow the marking rule of a fwmark service's vip, and it has none (without vip the marks are the nftables field's)")
		}
	}
	return r
}

// nft is the rule in nft's syntax.
func (r markRule) nft() string {
	var b strings.Builder
	addrs := make([]string, len(r.vips))
	for i, a := range r.vips {
		addrs[i] = a.String()
	}
	fmt.Fprintf(&b, "ip daddr { %s }", strings.Join(addrs, ", "))
	switch {
	case len(r.ports) > 0 && r.protocol != "":
		fmt.Fprintf(&b, " %s dport { %s }", r.protocol, strings.Join(r.ports, ", "))
	case len(r.ports) > 0:
		fmt.Fprintf(&b, " meta l4proto { tcp, udp, sctp } th dport { %s }", strings.Join(r.ports, ", "))
	case r.protocol != "":
		fmt.Fprintf(&b, " meta l4proto %s", r.protocol)
	}
	fmt.Fprintf(&b, " meta mark set %d", r.mark)
	return b.String()
}

// covers reports whether the rule marks packets to ap.
func (r markRule) covers(ap netip.AddrPort) bool {
	if !slices.Contains(r.vips, ap.Addr()) {
		return false
	}
	if len(r.ports) == 0 {
		return true
	}
	for _, p := range r.ports {
		a, b := portRange(p)
		if int(ap.Port()) >= a && int(ap.Port()) <= b {
			return true
		}
	}
	return false
}

// portRange is the first and last port of "80" or "8000-8010" (checked
// when the scenario was parsed).
func portRange(p string) (first, last int) {
	lo, hi, _ := strings.Cut(p, "-")
	first, _ = strconv.Atoi(lo)
	last = first
	if hi != "" {
		last, _ = strconv.Atoi(hi)
	}
	return first, last
}

// maxServedRange is the longest range of marked ports a built-in real
// server listens on by itself.
const maxServedRange = 64

// portList is the ports the rule marks, for the real servers to listen on:
// its single ports and ranges of up to maxServedRange ports.
func (r markRule) portList() []int {
	var out []int
	for _, p := range r.ports {
		a, b := portRange(p)
		if b-a >= maxServedRange {
			continue
		}
		for q := a; q <= b; q++ {
			out = append(out, q)
		}
	}
	return out
}

// firstPort is the first port the rule marks, 0 when it marks them all.
func (r markRule) firstPort() uint16 {
	if len(r.ports) == 0 {
		return 0
	}
	lo, _, _ := strings.Cut(r.ports[0], "-")
	p, _ := strconv.ParseUint(lo, 10, 16)
	return uint16(p)
}

// markRules are the marking rules of the structured services, by service
// index (nil for an address service, or a fwmark service without vip).
func (s *Scenario) markRules() []*markRule {
	rules := make([]*markRule, len(s.Services))
	for i, sv := range s.Services {
		if sv.FWMark != 0 && len(sv.VIP) > 0 {
			r := s.markRuleOf(i, func(string, string, ...any) {})
			rules[i] = &r
		}
	}
	return rules
}

// MarkRuleset is the nftables ruleset of the structured fwmark services'
// marking rules (nft -f syntax), or "" when there are none.
func (s *Scenario) MarkRuleset() string {
	var lines []string
	for _, r := range s.markRules() {
		if r != nil {
			lines = append(lines, "\t\t"+r.nft())
		}
	}
	if len(lines) == 0 {
		return ""
	}
	return fmt.Sprintf("table ip %s {\n\tchain prerouting {\n\t\ttype filter hook prerouting priority mangle; policy accept;\n%s\n\t}\n}\n",
		MarkTable, strings.Join(lines, "\n"))
}

// aims reports whether load aimed at ap reaches service i of lab: its VIP
// and port (any port of a port-0 service), or one of the addresses and
// ports a structured fwmark service marks.
func (s *Scenario) aims(lab *topo.Lab, i int, ap netip.AddrPort) bool {
	ls := lab.Services[i]
	if ls.FWMark != 0 && i < len(s.Services) {
		if r := s.markRules()[i]; r != nil {
			return r.covers(ap)
		}
	}
	return ls.VIP.IsValid() && ls.VIP == ap.Addr() && (ls.Port == ap.Port() || ls.Port == 0)
}

// defaultTarget is where load goes when a phase names no target: the first
// service's VIP and port, the first port a fwmark service marks.
func (s *Scenario) defaultTarget(lab *topo.Lab) netip.AddrPort {
	ls := lab.Services[0]
	if ls.FWMark != 0 && len(s.Services) > 0 {
		if r := s.markRules()[0]; r != nil {
			return netip.AddrPortFrom(ls.VIP, r.firstPort())
		}
	}
	return netip.AddrPortFrom(ls.VIP, ls.Port)
}

// nftError is the position nft gives a problem: "/dev/stdin:3:5-10: Error: …".
var nftError = regexp.MustCompile(`(?m)^[^:\n]*:(\d+):(\d+)(?:-\d+)?: Error: (.*)$`)

// LoadNFTables loads node's nftables: on a director the marking rules of
// the structured fwmark services, then the node's own ruleset (nftables:).
// A ruleset nft refuses is an Error at its place in the file.
func (s *Scenario) LoadNFTables(in *topo.Instance, node string) error {
	if n := in.Lab.Node(node); n == nil {
		return fmt.Errorf("no node %q", node)
	} else if rs := s.MarkRuleset(); rs != "" && n.Role == topo.Director {
		if _, err := nftLoad(in, node, rs); err != nil {
			return fmt.Errorf("director %s: the fwmark services' marking rules: %w", node, err)
		}
	}
	i := slices.IndexFunc(s.Nodes, func(n Node) bool { return n.Name == node })
	if i < 0 || strings.TrimSpace(s.Nodes[i].NFTables) == "" {
		return nil
	}
	msg, err := nftLoad(in, node, s.Nodes[i].NFTables)
	if err == nil {
		return nil
	}
	path := fmt.Sprintf("nodes[%d].nftables", i)
	e := s.src.errorAt(path, fmt.Sprintf("node %q", node), "nft refused the ruleset: "+err.Error())
	if m := nftError.FindStringSubmatch(msg); m != nil {
		e.Msg = "nft refused the ruleset: " + m[3]
		if strings.Contains(s.Nodes[i].NFTables, "\n") {
			// A block scalar: its text starts on the line after "|".
			line, _ := strconv.Atoi(m[1])
			col, _ := strconv.Atoi(m[2])
			e.Line += line
			e.Col = s.src.indent(e.Line) + col
		}
	}
	return e
}

// nftLoad runs nft -f - with ruleset in node; on failure it returns nft's
// message.
func nftLoad(in *topo.Instance, node, ruleset string) (string, error) {
	cmd := exec.Command("nft", "-f", "-")
	cmd.Stdin = strings.NewReader(ruleset)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := in.Run(node, cmd); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			return "", err
		}
		return msg, fmt.Errorf("%s", firstLine(msg))
	}
	return "", nil
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}
