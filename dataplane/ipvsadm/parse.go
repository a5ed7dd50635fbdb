package ipvsadm

import (
	"fmt"
	"strings"
	"time"
)

// parseOptions is parse_options. It reports false without an error when
// popt failed after the command (ipvsadm then returns -1 without exiting).
func (r *runner) parseOptions(argv []string, ce *commandEntry) (bool, error) {
	pc := newPoptContext(optionTable, argv)
	schedFlags := ""

	c, arg := pc.nextOpt()
	if c < 0 {
		return false, r.tryHelp()
	}
	var err error
	switch c {
	case 'A':
		ce.cmd = cmdAdd
	case 'E':
		ce.cmd = cmdEdit
	case 'D':
		ce.cmd = cmdDel
	case 'a':
		ce.cmd = cmdAddDest
	case 'e':
		ce.cmd = cmdEditDest
	case 'd':
		ce.cmd = cmdDelDest
	case 'C':
		ce.cmd = cmdFlush
	case 'L', 'l':
		ce.cmd = cmdList
	case 'Z':
		ce.cmd = cmdZero
	case tagSet:
		ce.cmd = cmdTimeout
	case 'R':
		ce.cmd = cmdRestore
	case 'S':
		ce.cmd = cmdSave
	case tagStartDaemon, tagStopDaemon:
		ce.cmd = cmdStartDaemon
		what := "start-daemon parameter"
		if c == tagStopDaemon {
			ce.cmd, what = cmdStopDaemon, "start_daemon"
		}
		switch *arg {
		case "master":
			ce.daemon.State = DaemonMaster
		case "backup":
			ce.daemon.State = DaemonBackup
		default:
			return false, r.fail(2, "illegal %s specified", what)
		}
	case 'h':
		r.usage(r.out)
		return false, &exit{0}
	case 'v':
		r.version(r.out)
		return false, &exit{0}
	default:
		return false, r.tryHelp()
	}

	for {
		c, arg = pc.nextOpt()
		if c < 0 {
			break
		}
		if err = r.parseOption(c, arg, ce, &schedFlags, pc); err != nil {
			return false, err
		}
	}
	if c < -1 {
		fmt.Fprintf(r.err, "%s: %s\n", pc.badOption(), poptStrerror(c))
		return false, nil
	}

	if ce.cmd == cmdTimeout {
		a0, ok0 := pc.arg()
		a1, ok1 := pc.arg()
		a2, ok2 := pc.arg()
		if !ok0 || !ok1 || !ok2 {
			return false, r.fail(2, "--set option requires 3 timeout values")
		}
		var secs [3]int64
		for i, a := range []string{a0, a1, a2} {
			if secs[i], err = r.parseTimeout(&a, 0, maxTimeout); err != nil {
				return false, err
			}
		}
		ce.timeouts = Timeouts{
			TCP:    time.Duration(secs[0]) * time.Second,
			TCPFin: time.Duration(secs[1]) * time.Second,
			UDP:    time.Duration(secs[2]) * time.Second,
		}
	}
	if a, ok := pc.arg(); ok {
		return false, r.fail(2, "unexpected argument %s", a)
	}
	if schedFlags != "" {
		ce.svc.flags &^= SvcSched1 | SvcSched2 | SvcSched3
		flags, err := r.parseSchedFlags(ce.svc.sched, schedFlags)
		if err != nil {
			return false, err
		}
		ce.svc.flags |= flags
	}
	return true, nil
}

// parseOption handles one option after the command (the loop of
// parse_options); arg is nil only for -p without its optional value.
func (r *runner) parseOption(c int, arg *string, ce *commandEntry, schedFlags *string, pc *poptContext) error {
	set := func(o option) error { return r.setOption(ce, o) }
	setFormat := func(o option, f format) error {
		ce.format |= f
		return set(o)
	}
	number := func(o option, min, max int64, what string) (int64, error) {
		if err := set(o); err != nil {
			return 0, err
		}
		v, ok := stringToNumber(*arg, min, max)
		if !ok {
			return 0, r.fail(2, "illegal %s specified", what)
		}
		return v, nil
	}
	var err error
	var v int64
	switch c {
	case 't', 'u', tagSCTPService:
		if err = set(optService); err != nil {
			return err
		}
		ce.svc.protocol = map[int]Protocol{'t': ProtoTCP, 'u': ProtoUDP, tagSCTPService: ProtoSCTP}[c]
		if parseService(*arg, &ce.svc)&serviceAddr == 0 {
			return r.fail(2, "illegal virtual server address[:port] specified")
		}
	case 'f':
		if err = set(optService); err != nil {
			return err
		}
		ce.svc.af, ce.svc.protocol = FamilyIPv4, ProtoTCP
		if ce.svc.fwmark, err = r.parseFWMark(*arg); err != nil {
			return err
		}
	case 's':
		if err = set(optScheduler); err != nil {
			return err
		}
		ce.svc.sched = truncate(*arg, schedNameMax-1)
	case 'p':
		if err = set(optPersistent); err != nil {
			return err
		}
		ce.svc.flags |= SvcPersistent
		v, err = r.parseTimeout(arg, 1, maxTimeout)
		ce.svc.timeout = uint32(v)
		return err
	case 'M':
		if err = set(optNetmask); err != nil {
			return err
		}
		if ce.svc.af != FamilyIPv6 {
			mask, ok := parseNetmask(*arg)
			if !ok {
				return r.fail(2, "illegal virtual server persistent mask specified")
			}
			ce.svc.netmask = mask
		} else {
			ce.svc.netmask = uint32(atoi(*arg))
			if ce.svc.netmask < 1 || ce.svc.netmask > 128 {
				return r.fail(2, "illegal ipv6 netmask specified")
			}
		}
	case 'r':
		if err = set(optServer); err != nil {
			return err
		}
		t := ce.svc
		parse := parseService(*arg, &t)
		ce.dest.af, ce.dest.Addr, ce.dest.Port = t.af, t.addr, t.port
		if parse&serviceAddr == 0 {
			return r.fail(2, "illegal real server address[:port] specified")
		}
		if parse == serviceAddr {
			ce.dest.Port = ce.svc.port
		}
	case 'i', 'g', 'm':
		ce.dest.Method = map[int]Method{'i': MethodTunnel, 'g': MethodRoute, 'm': MethodMasq}[c]
		return set(optForward)
	case 'w':
		v, err = number(optWeight, 0, intMax, "weight")
		ce.dest.Weight = int32(v)
	case 'x':
		v, err = number(optUThreshold, 0, intMax, "u_threshold")
		ce.dest.UThreshold = uint32(v)
	case 'y':
		v, err = number(optLThreshold, 0, intMax, "l_threshold")
		ce.dest.LThreshold = uint32(v)
	case 'c':
		return set(optConnection)
	case 'n':
		return setFormat(optNumeric, fmtNumeric)
	case tagMcastInterface:
		if err = set(optMcast); err != nil {
			return err
		}
		ce.daemon.MCastIfn = truncate(*arg, ifNameMax-1)
	case 'I':
		v, err = number(optSyncID, 0, 255, "syncid")
		ce.daemon.SyncID = uint8(v)
	case tagTimeout:
		return set(optTimeout)
	case tagDaemon:
		return set(optDaemon)
	case tagStats:
		return setFormat(optStats, fmtStats)
	case tagRate:
		return setFormat(optRate, fmtRate)
	case tagThresholds:
		return setFormat(optThresholds, fmtThresholds)
	case tagPersistentConn:
		return setFormat(optPersistentConn, fmtPersistentConn)
	case tagNoSort:
		return setFormat(optNoSort, fmtNoSort)
	case tagSort:
		// --sort is the default, accepted for compatibility.
	case 'X':
		return setFormat(optExact, fmtExact)
	case '6':
		if ce.svc.fwmark == 0 {
			return r.fail(2, "-6 used before -f\n")
		}
		ce.svc.af, ce.svc.netmask = FamilyIPv6, 128
	case 'o':
		ce.svc.flags |= SvcOnePacket
		return set(optOnePacket)
	case tagPE:
		if err = set(optPE); err != nil {
			return err
		}
		ce.svc.pe = truncate(*arg, peNameMax)
	case 'b':
		if err = set(optSchedFlags); err != nil {
			return err
		}
		*schedFlags = truncate(*arg, 127)
	case tagMcastGroup:
		if err = set(optMcastGroup); err != nil {
			return err
		}
		if strings.IndexByte(*arg, ':') >= 0 {
			a, ok := inetPton6(*arg)
			if !ok || !a.IsMulticast() {
				return r.fail(2, "invalid IPv6 mcast-group `%s'", *arg)
			}
			ce.daemon.MCastGroup = a
		} else {
			a, ok := inetPton4(*arg)
			if !ok || !a.IsMulticast() {
				return r.fail(2, "invalid IPv4 mcast-group `%s'", *arg)
			}
			ce.daemon.MCastGroup = a
		}
	case tagMcastPort:
		v, err = number(optMcastPort, 1, 65535, "mcast-port")
		ce.daemon.MCastPort = uint16(v)
	case tagMcastTTL:
		v, err = number(optMcastTTL, 1, 255, "mcast-ttl")
		ce.daemon.MCastTTL = uint8(v)
	case tagSyncMaxLen:
		v, err = number(optSyncMaxLen, 1, 65535-20-8, "sync-maxlen")
		ce.daemon.SyncMaxLen = uint16(v)
	case tagTunInfo:
		return setFormat(optTunInfo, fmtTunInfo)
	case tagTunType:
		if err = set(optTunType); err != nil {
			return err
		}
		t, ok := map[string]TunType{"ipip": TunIPIP, "gue": TunGUE, "gre": TunGRE}[*arg]
		if !ok {
			return r.fail(2, "illegal tunnel type specified")
		}
		ce.dest.TunType = t
	case tagTunPort:
		v, err = number(optTunPort, 1, 65535, "tunnel port")
		ce.dest.TunPort = uint16(v)
	case tagTunNoCsum:
		return set(optTunNoCsum)
	case tagTunCsum:
		ce.dest.TunFlags |= TunCsum
		return set(optTunCsum)
	case tagTunRemCsum:
		ce.dest.TunFlags |= TunRemCsum
		return set(optTunRemCsum)
	default:
		return r.fail(2, "invalid option `%s'", pc.badOption())
	}
	return err
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// parseTimeout is parse_timeout; a missing value (-p alone) is 360 s.
func (r *runner) parseTimeout(s *string, min, max int64) (int64, error) {
	if s == nil {
		return persistentTimeout, nil
	}
	v, ok := stringToNumber(*s, min, max)
	if !ok {
		return 0, r.fail(2, "invalid timeout value `%s' specified", *s)
	}
	return v, nil
}

// parseFWMark is parse_fwmark: 1..4294967295.
func (r *runner) parseFWMark(s string) (uint32, error) {
	v, n, overflow := strtol(s, 10)
	if n == 0 || n != len(s) || overflow || v <= 0 || v > 0xffffffff {
		return 0, r.fail(2, "invalid fwmark value `%s' specified", s)
	}
	return uint32(v), nil
}

// parseNetmask is parse_netmask for IPv4: a dotted mask (inet_aton rules).
// Host names are not resolved.
func parseNetmask(s string) (uint32, bool) {
	a, ok := inetAton(s)
	if !ok {
		return 0, false
	}
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3]), true
}

// parseService results (SERVICE_*).
const (
	serviceAddr = 1
	servicePort = 2
)

// parseService is parse_service: "[v6]:port", a bare IPv6 literal (no
// port), or "host[:port]" with an inet_aton host; the port is a number or
// a service name for svc's protocol. An all-digit string is refused. Host
// names are not resolved (no DNS), as if the lookup failed.
func parseService(buf string, svc *svcSpec) int {
	if isAllDigits(buf) {
		return 0
	}
	port, hasPort := "", false
	if strings.HasPrefix(buf, "[") {
		buf = buf[1:]
		end := strings.IndexByte(buf, ']')
		if end < 0 || !strings.HasPrefix(buf[end+1:], ":") {
			return 0
		}
		port, hasPort = buf[end+2:], true
		buf = buf[:end]
	}
	if a, ok := inetPton6(buf); ok {
		svc.addr, svc.af, svc.netmask = a, FamilyIPv6, 128
	} else {
		// The IPv4 path looks for its own colon; a bracketed IPv4
		// address thereby loses its port.
		hasPort = false
		if i := strings.LastIndexByte(buf, ':'); i >= 0 {
			buf, port, hasPort = buf[:i], buf[i+1:], true
		}
		a, ok := inetAton(buf)
		if !ok {
			return 0
		}
		svc.addr, svc.af = a, FamilyIPv4
	}
	result := serviceAddr
	if hasPort {
		result |= servicePort
		if n, ok := stringToNumber(port, 0, 65535); ok {
			svc.port = uint16(n)
		} else if n, ok := serviceToPort(port, svc.protocol); ok {
			svc.port = n
		} else {
			return 0
		}
	}
	return result
}

// isAllDigits is str_is_digit: true for the empty string too.
func isAllDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	return true
}

// parseSchedFlags is parse_sched_flags: sh-* and mh-* flags need their
// scheduler, which defaults to wlc when -s is absent.
func (r *runner) parseSchedFlags(sched, arg string) (ServiceFlags, error) {
	if sched == "" {
		sched = defaultScheduler
	}
	var flags ServiceFlags
	words := strings.FieldsFunc(arg, func(c rune) bool { return c == ',' })
	if len(words) == 0 {
		// strtok finds no flag and ipvsadm passes its NULL to strcmp: the
		// C program dies of SIGSEGV, which a shell reports as 139.
		return 0, &exit{128 + 11}
	}
	for _, flag := range words {
		need := ""
		switch flag {
		case "flag-1":
			flags |= SvcSched1
		case "flag-2":
			flags |= SvcSched2
		case "flag-3":
			flags |= SvcSched3
		case "sh-fallback", "mh-fallback":
			flags |= SvcSched1
			need = flag[:2]
		case "sh-port", "mh-port":
			flags |= SvcSched2
			need = flag[:2]
		default:
			return 0, r.fail(2, "invalid scheduler flag `%s'", flag)
		}
		if need != "" && sched != need {
			return 0, r.fail(2, "incompatible scheduler flag `%s'", flag)
		}
	}
	return flags, nil
}

// genericOptCheck is generic_opt_check: the validity matrix.
func (r *runner) genericOptCheck(cmd command, options optionSet) error {
	row := validity[cmd]
	last, count := option(0), 0
	for o := option(0); o < numOptions; o++ {
		switch {
		case !options.has(o):
			if row[o] == '+' {
				return r.fail(2, "You need to supply the '%s' option for the '%s' command", optNames[o], cmdNames[cmd])
			}
		case row[o] == 'x':
			return r.fail(2, "Illegal '%s' option with the '%s' command", optNames[o], cmdNames[cmd])
		case row[o] == '1':
			count++
			if count == 1 {
				last = o
				continue
			}
			return r.fail(2, "The option '%s' conflicts with the '%s' option in the '%s' command", optNames[o], optNames[last], cmdNames[cmd])
		}
	}
	return nil
}

// tunnelOptCheck is tunnel_opt_check: which tunnel options each type takes.
func (r *runner) tunnelOptCheck(t TunType, options optionSet) error {
	if int(t) >= len(tunnelValidity) {
		return nil
	}
	row := tunnelValidity[t]
	last, count := option(0), 0
	for j, o := range tunOptions {
		switch {
		case !options.has(o):
			if row[j] == '+' {
				return r.fail(2, "You need to supply the '%s' option for the '%s' tunnel type", optNames[o], tunNames[t])
			}
		case row[j] == 'x':
			return r.fail(2, "Illegal '%s' option with the '%s' tunnel type", optNames[o], tunNames[t])
		case row[j] == '1':
			count++
			if count == 1 {
				last = o
				continue
			}
			return r.fail(2, "The option '%s' conflicts with the '%s' option in the '%s' tunnel type", optNames[o], optNames[last], tunNames[t])
		}
	}
	return nil
}
