// Package replay runs kipvs scenarios (shared/tools/kipvs/README.md) against
// the director core on a virtual clock and prints what kipvs prints for the
// real kernel: the echoed steps, one decision line per connection, ipvsadm's
// own output, and the final listings. It synthesizes the packets the kipvs
// client and real-server stub exchange, so connection states, ActiveConn and
// InActConn and the --stats counters come out as the kernel counts them.
package replay

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Step is one directive of a scenario.
type Step struct {
	Line int
	Raw  string // the line without its comment, trimmed
	Verb string
	Args []string
	Conn *ConnSpec // for conn
	Sh   []string  // for sh and nft: the command line split as a shell would
	Pipe string    // for sh: the pipeline after the first |, run by /bin/sh
}

// ConnSpec is a conn directive.
type ConnSpec struct {
	Client  netip.Addr
	Count   int
	Target  netip.AddrPort
	HasTgt  bool
	UDP     bool
	Mode    string // close, hold, rst
	Sport   int    // 0: continue the client's counter
	Pkts    int
	Gap     time.Duration
	Timeout time.Duration
}

// Script is a parsed scenario.
type Script struct {
	Name          string
	Steps         []Step
	VIPs, RSs     []netip.Addr
	Clients       []netip.Addr
	DefaultTarget netip.AddrPort
	HasDefault    bool
	DirectReplies bool
	StatsWait     time.Duration
	Timeout       time.Duration
}

// Error is a scenario error with its position.
type Error struct {
	File string
	Line int
	Err  error
}

func (e *Error) Error() string { return fmt.Sprintf("%s:%d: %v", e.File, e.Line, e.Err) }
func (e *Error) Unwrap() error { return e.Err }

// Parse reads a scenario. Errors name FILE:LINE.
func Parse(name string, text string) (*Script, error) {
	sc := &Script{Name: name, DirectReplies: true, StatsWait: 2500 * time.Millisecond, Timeout: 240 * time.Second}
	fail := func(line int, format string, a ...any) error {
		return &Error{File: name, Line: line, Err: fmt.Errorf(format, a...)}
	}
	for i, raw := range strings.Split(text, "\n") {
		n := i + 1
		line := strings.TrimSpace(strings.TrimSuffix(raw, "\r"))
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if j := strings.Index(line, " #"); j >= 0 {
			line = strings.TrimSpace(line[:j])
		}
		f := strings.Fields(line)
		st := Step{Line: n, Raw: line, Verb: f[0], Args: f[1:]}
		switch st.Verb {
		case "ipvsadm":
			if err := sc.scanIpvsadm(st.Args); err != nil {
				return nil, fail(n, "%v", err)
			}
		case "conn":
			cs, err := parseConn(st.Args)
			if err != nil {
				return nil, fail(n, "%v", err)
			}
			st.Conn = cs
			sc.Clients = addUnique(sc.Clients, cs.Client)
		case "rs", "vip", "client":
			for _, a := range st.Args {
				ad, _, _, err := parseHostPort(a)
				if err != nil {
					return nil, fail(n, "%v", err)
				}
				switch st.Verb {
				case "rs":
					sc.RSs = addUnique(sc.RSs, ad)
				case "vip":
					sc.VIPs = addUnique(sc.VIPs, ad)
				default:
					sc.Clients = addUnique(sc.Clients, ad)
				}
			}
			continue
		case "replies":
			if len(st.Args) != 1 || st.Args[0] != "direct" && st.Args[0] != "director" {
				return nil, fail(n, "replies direct|director")
			}
			sc.DirectReplies = st.Args[0] == "direct"
			continue
		case "port":
			for _, a := range st.Args {
				if p, err := strconv.Atoi(a); err != nil || p <= 0 || p > 65535 {
					return nil, fail(n, "bad port %q", a)
				}
			}
			continue
		case "timeout", "statswait":
			if len(st.Args) != 1 {
				return nil, fail(n, "%s SECONDS", st.Verb)
			}
			d, err := parseDur(st.Args[0])
			if err != nil || d < 0 {
				return nil, fail(n, "bad duration %q", st.Args[0])
			}
			if st.Verb == "timeout" {
				sc.Timeout = d
			} else {
				sc.StatsWait = d
			}
			continue
		case "sleep", "wait":
			if len(st.Args) != 1 {
				return nil, fail(n, "sleep SECONDS")
			}
			if d, err := parseDur(st.Args[0]); err != nil || d < 0 {
				return nil, fail(n, "bad duration %q", st.Args[0])
			}
		case "sysctl":
			for _, kv := range st.Args {
				if _, _, ok := strings.Cut(kv, "="); !ok {
					return nil, fail(n, "sysctl KEY=VALUE")
				}
			}
		case "sh", "nft":
			cmd := strings.TrimSpace(strings.TrimPrefix(line, st.Verb))
			if st.Verb == "sh" {
				cmd, st.Pipe = splitPipe(cmd)
			}
			words, err := shellWords(cmd)
			if err != nil {
				return nil, fail(n, "%v", err)
			}
			st.Sh = words
			if st.Verb == "nft" {
				if _, err := parseNft(words); err != nil {
					return nil, fail(n, "nft: %v", err)
				}
			} else if len(words) == 0 || words[0] != "ipvsadm" {
				return nil, fail(n, "sh: a replay runs only an ipvsadm command, optionally piped into a shell pipeline")
			}
		case "close", "echo", "waitstats":
		default:
			return nil, fail(n, "unknown directive %q", st.Verb)
		}
		sc.Steps = append(sc.Steps, st)
	}
	for _, st := range sc.Steps {
		if st.Verb != "conn" || st.Conn.HasTgt {
			continue
		}
		if !sc.HasDefault {
			return nil, fail(st.Line, "no VIP:PORT given and no ipvsadm -A service to default to")
		}
		if sc.DefaultTarget.Addr().Is4() != st.Conn.Client.Is4() {
			return nil, fail(st.Line, "client %v and the default target %v (first ipvsadm -A) are of different families; name the target", st.Conn.Client, sc.DefaultTarget)
		}
	}
	return sc, nil
}

func addUnique(list []netip.Addr, a netip.Addr) []netip.Addr {
	for _, x := range list {
		if x == a {
			return list
		}
	}
	return append(list, a)
}

// scanIpvsadm records the VIPs and real servers an ipvsadm line names, and
// the first service added (the default target of conn), as kipvs does.
func (sc *Script) scanIpvsadm(args []string) error {
	isAdd := false
	for _, a := range args {
		if a == "-A" || a == "--add-service" {
			isAdd = true
		}
	}
	for i := 0; i < len(args); i++ {
		a, val, kind := args[i], "", ""
		switch {
		case a == "-t" || a == "-u" || a == "--tcp-service" || a == "--udp-service" || a == "--sctp-service":
			kind = "svc"
		case a == "-r" || a == "--real-server":
			kind = "rs"
		case strings.HasPrefix(a, "--tcp-service=") || strings.HasPrefix(a, "--udp-service=") || strings.HasPrefix(a, "--sctp-service="):
			kind, val = "svc", a[strings.Index(a, "=")+1:]
		case strings.HasPrefix(a, "--real-server="):
			kind, val = "rs", a[strings.Index(a, "=")+1:]
		default:
			continue
		}
		if val == "" {
			if i+1 >= len(args) {
				return fmt.Errorf("%s needs an argument", a)
			}
			i++
			val = args[i]
		}
		addr, port, hasPort, err := parseHostPort(val)
		if err != nil {
			return err
		}
		if kind == "rs" {
			sc.RSs = addUnique(sc.RSs, addr)
			continue
		}
		sc.VIPs = addUnique(sc.VIPs, addr)
		if isAdd && !sc.HasDefault && hasPort && port != 0 {
			sc.DefaultTarget = netip.AddrPortFrom(addr, uint16(port))
			sc.HasDefault = true
		}
	}
	return nil
}

// parseHostPort reads ADDR, ADDR:PORT, [V6] or [V6]:PORT.
func parseHostPort(s string) (addr netip.Addr, port int, hasPort bool, err error) {
	host, ps := s, ""
	switch {
	case strings.HasPrefix(s, "["):
		end := strings.Index(s, "]")
		if end < 0 {
			return addr, 0, false, fmt.Errorf("bad address %q", s)
		}
		host = s[1:end]
		if rest := s[end+1:]; rest != "" {
			if !strings.HasPrefix(rest, ":") {
				return addr, 0, false, fmt.Errorf("bad address %q", s)
			}
			ps = rest[1:]
		}
	case strings.Count(s, ":") == 1:
		host, ps, _ = strings.Cut(s, ":")
	}
	addr, err = netip.ParseAddr(host)
	if err != nil {
		return addr, 0, false, fmt.Errorf("bad address %q", s)
	}
	if ps != "" {
		port, err = strconv.Atoi(ps)
		if err != nil || port < 0 || port > 65535 {
			return addr, 0, false, fmt.Errorf("bad port in %q (only numeric ports are supported)", s)
		}
		hasPort = true
	}
	return addr, port, hasPort, nil
}

// maxDur bounds durations so that the virtual clock cannot overflow.
const maxDur = 100 * 365 * 24 * time.Hour

func parseDur(s string) (time.Duration, error) {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		d, err := time.ParseDuration(s)
		if err == nil && d > maxDur {
			return 0, fmt.Errorf("duration %q is too long", s)
		}
		return d, err
	}
	if math.IsNaN(f) || f < 0 || f*float64(time.Second) > float64(maxDur) {
		return 0, fmt.Errorf("bad duration %q", s)
	}
	return time.Duration(f * float64(time.Second)), nil
}

// parseConn reads conn CLIENT COUNT [TARGET] [tcp|udp] [close|hold|rst]
// [sport=N] [pkts=N] [gap=D] [timeout=D].
func parseConn(args []string) (*ConnSpec, error) {
	if len(args) < 2 {
		return nil, errors.New("usage: conn CLIENT-IP COUNT [VIP:PORT] [tcp|udp] [close|hold|rst] [sport=N] [pkts=N] [gap=DUR] [timeout=DUR]")
	}
	cs := &ConnSpec{Mode: "close", Timeout: 3 * time.Second, Pkts: 1}
	var err error
	if cs.Client, _, _, err = parseHostPort(args[0]); err != nil {
		return nil, err
	}
	if cs.Count, err = strconv.Atoi(args[1]); err != nil || cs.Count < 0 {
		return nil, fmt.Errorf("bad count %q", args[1])
	}
	for _, a := range args[2:] {
		switch {
		case a == "tcp" || a == "udp":
			cs.UDP = a == "udp"
		case a == "hold" || a == "rst" || a == "close":
			cs.Mode = a
		case strings.HasPrefix(a, "sport="):
			if cs.Sport, err = strconv.Atoi(a[6:]); err != nil || cs.Sport <= 0 || cs.Sport > 65535 {
				return nil, fmt.Errorf("bad %q", a)
			}
		case strings.HasPrefix(a, "pkts="):
			if cs.Pkts, err = strconv.Atoi(a[5:]); err != nil || cs.Pkts < 1 {
				return nil, fmt.Errorf("bad %q", a)
			}
		case strings.HasPrefix(a, "gap="):
			if cs.Gap, err = parseDur(a[4:]); err != nil || cs.Gap < 0 {
				return nil, fmt.Errorf("bad %q", a)
			}
		case strings.HasPrefix(a, "timeout="):
			if cs.Timeout, err = parseDur(a[8:]); err != nil || cs.Timeout < 0 {
				return nil, fmt.Errorf("bad %q", a)
			}
		default:
			addr, port, hasPort, err := parseHostPort(a)
			if err != nil || !hasPort {
				return nil, fmt.Errorf("bad conn argument %q (target must be ADDR:PORT)", a)
			}
			cs.Target, cs.HasTgt = netip.AddrPortFrom(addr, uint16(port)), true
		}
	}
	if cs.Pkts > 1 && !cs.UDP {
		return nil, errors.New("pkts=N needs udp")
	}
	if cs.HasTgt && cs.Target.Addr().Is4() != cs.Client.Is4() {
		return nil, fmt.Errorf("client %v and target %v are of different families", cs.Client, cs.Target.Addr())
	}
	return cs, nil
}

// splitPipe cuts a command line at its first | outside quotes.
func splitPipe(s string) (cmd, pipe string) {
	var quote byte
	for i := 0; i < len(s); i++ {
		switch ch := s[i]; {
		case quote != 0:
			if ch == quote {
				quote = 0
			}
		case ch == '\\':
			i++
		case ch == '\'' || ch == '"':
			quote = ch
		case ch == '|':
			return strings.TrimSpace(s[:i]), strings.TrimSpace(s[i+1:])
		}
	}
	return s, ""
}

// shellWords splits a command line as sh does for the quoting the
// scenarios use: single and double quotes and backslash escapes. A
// separator such as | stays part of the words, for the pipeline.
func shellWords(s string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord := false
	for i := 0; i < len(s); i++ {
		ch := s[i]
		switch {
		case ch == '\'':
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return nil, errors.New("unterminated single quote")
			}
			cur.WriteString(s[i+1 : i+1+j])
			i += j + 1
			inWord = true
		case ch == '"':
			j := i + 1
			for ; j < len(s) && s[j] != '"'; j++ {
				if s[j] == '\\' && j+1 < len(s) {
					j++
				}
				cur.WriteByte(s[j])
			}
			if j >= len(s) {
				return nil, errors.New("unterminated double quote")
			}
			i = j
			inWord = true
		case ch == '\\' && i+1 < len(s):
			i++
			cur.WriteByte(s[i])
			inWord = true
		case ch == ' ' || ch == '\t':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteByte(ch)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}
