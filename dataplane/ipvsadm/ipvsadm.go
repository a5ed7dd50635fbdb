package ipvsadm

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"syscall"
	"time"
)

const (
	program = "ipvsadm"
	// maxTimeout is MAX_TIMEOUT, 31 days.
	maxTimeout = 86400 * 31
	// persistentTimeout is IPVS_SVC_PERSISTENT_TIMEOUT, the -p default.
	persistentTimeout = 6 * 60
	schedNameMax      = 16 // IP_VS_SCHEDNAME_MAXLEN
	peNameMax         = 32 // IP_VS_PENAME_MAXLEN
	ifNameMax         = 16 // IP_VS_IFNAME_MAXLEN
	defaultScheduler  = "wlc"
	defaultMcastIfn   = "eth0"
	intMax            = 1<<31 - 1
)

// exit is ipvsadm calling exit(): it ends the whole program, a restore
// included, with this status.
type exit struct{ status int }

func (e *exit) Error() string { return fmt.Sprintf("exit status %d", e.status) }

// Run is the ipvsadm program: args are its arguments without the program
// name, stdin feeds -R (nil reads as empty), and the return value is the
// exit status: 0, 2 for usage and validation errors, 255 for kernel and
// option-parser errors, 1 for -L of a missing service. The Director plays
// the kernel. Messages go to stderr as they happen and listings to stdout
// when Run returns, as ipvsadm's do when its stdout is a pipe, so passing
// one writer for both gives the interleaving a shell's 2>&1 shows.
func Run(d Director, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	// Like the C program writing to a pipe: stdout is flushed at exit,
	// stderr is written at once (so with 2>&1 messages come first).
	out := bufio.NewWriter(stdout)
	defer out.Flush()
	r := &runner{d: d, stdin: stdin, out: out, err: stderr}
	argv := make([]string, 0, len(args)+1)
	argv = append(argv, program)
	for _, a := range args {
		argv = append(argv, cString(a))
	}
	if len(argv) == 1 {
		r.listAll(0)
		return 0
	}
	status, err := r.processOptions(argv, false)
	var e *exit
	if errors.As(err, &e) {
		return e.status
	}
	return status & 0xff
}

// runner holds what lives for one ipvsadm process.
type runner struct {
	d     Director
	stdin io.Reader
	out   *bufio.Writer
	err   io.Writer
	// op is libipvs's ipvs_func: the last library call, which selects the
	// wording of a kernel error. It survives from one restored line to the
	// next, as in the C program.
	op kernelOp
}

// fail is ipvsadm's fail(): the message on stderr, then exit(status).
func (r *runner) fail(status int, format string, args ...any) error {
	fmt.Fprintf(r.err, format+"\n", args...)
	return &exit{status}
}

func (r *runner) tryHelp() error {
	fmt.Fprintf(r.err, "Try `%s -h' or '%s --help' for more information.\n", program, program)
	return &exit{255}
}

// svcSpec is ipvs_service_t as ipvsadm fills it in.
type svcSpec struct {
	af       Family
	protocol Protocol
	addr     netip.Addr
	port     uint16
	fwmark   uint32
	sched    string
	flags    ServiceFlags
	timeout  uint32
	netmask  uint32
	pe       string
}

func (s *svcSpec) key() ServiceKey {
	if s.fwmark != 0 {
		return ServiceKey{AF: s.af, FWMark: s.fwmark}
	}
	return ServiceKey{AF: s.af, Protocol: s.protocol, Addr: s.addr, Port: s.port}
}

func (s *svcSpec) spec() ServiceSpec {
	return ServiceSpec{
		Key:       s.key(),
		Scheduler: s.sched,
		Flags:     s.flags,
		Timeout:   time.Duration(s.timeout) * time.Second,
		Netmask:   s.netmask,
		PE:        s.pe,
	}
}

type destSpec struct {
	af Family
	DestSpec
}

// commandEntry is struct ipvs_command_entry plus the parse results.
type commandEntry struct {
	cmd      command
	svc      svcSpec
	dest     destSpec
	timeouts Timeouts
	daemon   DaemonSpec
	options  optionSet
	format   format
}

func (r *runner) setOption(ce *commandEntry, o option) error {
	if ce.options.has(o) {
		return r.fail(2, "multiple '%s' options specified", optNames[o])
	}
	ce.options |= 1 << o
	return nil
}

// processOptions is process_options: parse, check, then run one command.
// It returns the command's result (0 or -1) or an *exit.
func (r *runner) processOptions(argv []string, readingStdin bool) (int, error) {
	ce := &commandEntry{}
	ce.dest.Weight = 1
	ce.dest.Method = MethodRoute
	ce.svc.netmask = 0xffffffff

	if ok, err := r.parseOptions(argv, ce); err != nil || !ok {
		return -1, err
	}
	if err := r.genericOptCheck(ce.cmd, ce.options); err != nil {
		return 0, err
	}
	if ce.cmd == cmdAdd || ce.cmd == cmdEdit {
		if ce.svc.fwmark == 0 && ce.svc.port == 0 && ce.svc.flags&SvcPersistent == 0 {
			return 0, r.fail(2, "Zero port specified for non-persistent service")
		}
		if ce.svc.flags&SvcOnePacket != 0 && ce.svc.fwmark == 0 && ce.svc.protocol != ProtoUDP {
			return 0, r.fail(2, "One-Packet Scheduling is only for UDP virtual services")
		}
		if ce.svc.sched == "" {
			ce.svc.sched = defaultScheduler
		}
	}
	if ce.cmd == cmdStartDaemon && ce.daemon.MCastIfn == "" {
		ce.daemon.MCastIfn = defaultMcastIfn
	}
	if ce.cmd == cmdAddDest || ce.cmd == cmdEditDest {
		m := ce.dest.Method
		if ce.svc.fwmark == 0 && (m == MethodTunnel || m == MethodRoute) {
			ce.dest.Port = ce.svc.port
		}
		if ce.dest.af != ce.svc.af && m != MethodTunnel {
			return 0, r.fail(2, "Different address family is allowed only for tunneling servers")
		}
		tunOpts := ce.options & (1<<optTunType | 1<<optTunPort | 1<<optTunNoCsum | 1<<optTunCsum | 1<<optTunRemCsum)
		if tunOpts != 0 && m != MethodTunnel {
			return 0, r.fail(2, "Tunnel options conflict with forward method")
		}
		if err := r.tunnelOptCheck(ce.dest.TunType, ce.options); err != nil {
			return 0, err
		}
	}
	return r.execute(ce, argv, readingStdin)
}

// execute runs a checked command against the Director.
func (r *runner) execute(ce *commandEntry, argv []string, readingStdin bool) (int, error) {
	var err error
	switch ce.cmd {
	case cmdList:
		o := ce.options
		if (o&(1<<optConnection|1<<optTimeout|1<<optDaemon) != 0 && o&(1<<optStats|1<<optRate|1<<optThresholds) != 0) ||
			(o&(1<<optTimeout|1<<optDaemon) != 0 && o.has(optPersistentConn)) {
			return 0, r.fail(2, "options conflicts in the list command")
		}
		switch {
		case o.has(optConnection):
			r.listConns(ce.format)
		case o.has(optService):
			return 0, r.listService(&ce.svc, ce.format)
		case o.has(optTimeout):
			r.listTimeout()
		case o.has(optDaemon):
			r.listDaemons()
		default:
			r.listAll(ce.format)
		}
		return 0, nil
	case cmdRestore:
		return r.restore(readingStdin)
	case cmdSave:
		r.listAll(ce.format | fmtRule)
		return 0, nil
	case cmdFlush:
		err = r.d.Flush()
	case cmdAdd:
		r.op = opAddService
		err = r.d.AddService(ce.svc.spec())
	case cmdEdit:
		r.op = opUpdateService
		err = r.d.EditService(ce.svc.spec())
	case cmdDel:
		r.op = opDelService
		err = r.d.DelService(ce.svc.key())
	case cmdZero:
		r.op = opZeroService
		k := ce.svc.key()
		if ce.svc.fwmark == 0 && (!ce.svc.addr.IsValid() || ce.svc.addr.IsUnspecified()) && ce.svc.port == 0 {
			k = ServiceKey{} // libipvs sends no service: zero them all
		}
		err = r.d.Zero(k)
	case cmdAddDest:
		r.op = opAddDest
		err = r.d.AddDest(ce.svc.key(), ce.dest.DestSpec)
	case cmdEditDest:
		r.op = opUpdateDest
		err = r.d.EditDest(ce.svc.key(), ce.dest.DestSpec)
	case cmdDelDest:
		r.op = opDelDest
		err = r.d.DelDest(ce.svc.key(), ce.dest.AddrPort())
	case cmdTimeout:
		r.op = opSetTimeout
		err = r.d.SetTimeouts(ce.timeouts)
	case cmdStartDaemon:
		r.op = opStartDaemon
		err = r.d.StartDaemon(ce.daemon)
	case cmdStopDaemon:
		r.op = opStopDaemon
		err = r.d.StopDaemon(ce.daemon.State, ce.daemon.SyncID)
	}
	if err != nil {
		fmt.Fprintf(r.err, "%s\n", r.strerror(err))
		return -1, nil
	}
	return 0, nil
}

// restore is restore_table: each line of stdin is a command line. Option
// errors end the program; kernel errors are reported and the next line
// runs; the status is the last line's.
func (r *runner) restore(readingStdin bool) (int, error) {
	if readingStdin {
		return 0, r.tryHelp()
	}
	if r.stdin == nil {
		return 0, nil
	}
	in := bufio.NewReader(r.stdin)
	result := 0
	for {
		words, ok := readConfigLine(in)
		if !ok {
			return result, nil
		}
		if len(words) == 0 {
			continue
		}
		argv := append([]string{program}, words...)
		status, err := r.processOptions(argv, true)
		if err != nil {
			return status, err
		}
		result = status
	}
}

// readConfigLine is config_stream_read: the words of one line, split on
// space, tab and CR, without the word "ipvsadm". It reports false at the
// end of input, and also for a last line without a newline whose final
// word is followed by more than one blank, which the C scanner drops.
func readConfigLine(in *bufio.Reader) ([]string, bool) {
	var words []string
	isBlank := func(c byte) bool { return c == ' ' || c == '\t' || c == '\r' }
	for {
		c, err := in.ReadByte()
		if err != nil {
			return words, len(words) > 0
		}
		switch {
		case c == '\n':
			return words, true
		case isBlank(c):
			// A run of blanks: at the end of input without a newline the
			// whole line is lost.
			for {
				c, err = in.ReadByte()
				if err != nil {
					return nil, false
				}
				if !isBlank(c) {
					break
				}
			}
			if c == '\n' {
				return words, true
			}
			in.UnreadByte()
		default:
			var b strings.Builder
			for ; err == nil && c != '\n' && !isBlank(c); c, err = in.ReadByte() {
				b.WriteByte(c)
			}
			if w := cString(b.String()); w != "ipvsadm" {
				words = append(words, w)
			}
			switch {
			case err != nil:
				return words, true
			case c == '\n':
				return words, true
			}
			// The one blank after a word belongs to the word's scan.
		}
	}
}

// kernelOp is the libipvs call whose failure is being reported.
type kernelOp int

const (
	opInit kernelOp = iota
	opAddService
	opUpdateService
	opDelService
	opZeroService
	opAddDest
	opUpdateDest
	opDelDest
	opSetTimeout
	opStartDaemon
	opStopDaemon
	opGetServices
	opGetDests
	opGetService
	opGetTimeout
	opGetDaemon
)

var strerrorTable = []struct {
	op      kernelOp // opInit: any call
	errno   syscall.Errno
	message string
}{
	{opAddService, syscall.EEXIST, "Service already exists"},
	{opAddService, syscall.ENOENT, "Scheduler or persistence engine not found"},
	{opUpdateService, syscall.ESRCH, "No such service"},
	{opUpdateService, syscall.ENOENT, "Scheduler or persistence engine not found"},
	{opDelService, syscall.ESRCH, "No such service"},
	{opZeroService, syscall.ESRCH, "No such service"},
	{opAddDest, syscall.ESRCH, "Service not defined"},
	{opAddDest, syscall.EEXIST, "Destination already exists"},
	{opUpdateDest, syscall.ESRCH, "Service not defined"},
	{opUpdateDest, syscall.ENOENT, "No such destination"},
	{opDelDest, syscall.ESRCH, "Service not defined"},
	{opDelDest, syscall.ENOENT, "No such destination"},
	{opStartDaemon, syscall.EEXIST, "Daemon has already run"},
	{opStopDaemon, syscall.ESRCH, "No daemon is running"},
	{opGetServices, syscall.ESRCH, "No such service"},
	{opGetDests, syscall.ESRCH, "No such service"},
	{opGetService, syscall.ESRCH, "No such service"},
	{opInit, syscall.EPERM, "Permission denied (you must be root)"},
	{opInit, syscall.EINVAL, "Invalid operation.  Possibly wrong module version, address not unicast, ..."},
	{opInit, syscall.ENOPROTOOPT, "Protocol not available"},
	{opInit, syscall.ENOMEM, "Memory allocation problem"},
	{opInit, syscall.EOPNOTSUPP, "Operation not supported with IPv6"},
	{opInit, syscall.EAFNOSUPPORT, "Operation not supported with specified address family"},
	{opInit, syscall.EMSGSIZE, "Module is wrong version"},
}

// strerror is ipvs_strerror for the current call: a kernel errno gets
// libipvs's wording for that call, else glibc's strerror text. An error
// that carries no errno is printed as it is.
func (r *runner) strerror(err error) string {
	var errno syscall.Errno
	if !errors.As(err, &errno) {
		return err.Error()
	}
	for _, e := range strerrorTable {
		if (e.op == opInit || e.op == r.op) && e.errno == errno {
			return e.message
		}
	}
	return glibcStrerror(errno)
}

// glibcStrerror is glibc's strerror text. Go's table holds the same texts
// with the first letter lowered.
func glibcStrerror(errno syscall.Errno) string {
	s := errno.Error()
	if strings.HasPrefix(s, "errno ") {
		return fmt.Sprintf("Unknown error %d", int(errno))
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
