package ipvsadm

import (
	"bytes"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The kipvs samples are the real kernel's and Debian ipvsadm 1.31's output
// for recorded sessions. Every ipvsadm step of every sample is run here, in
// order, against the fake kernel, and its output and exit status must be
// the sample's byte for byte. The fake has no traffic, so before a listing
// the numbers that traffic produced (ActiveConn, InActConn, PersistConn,
// statistics, connection entries) are copied into it from the expected
// listing; everything else (which services and destinations exist, their
// settings, the sort order, the layout, the messages) comes from replaying
// the commands.

const samplesDir = "../../../shared/tools/kipvs/samples"

// sampleDir finds the samples from the worktree or the main checkout.
func sampleDir(t *testing.T) string {
	for _, d := range []string{samplesDir, "/work/shared/tools/kipvs/samples"} {
		if _, err := os.Stat(d); err == nil {
			return d
		}
	}
	t.Skip("kipvs samples not found")
	return ""
}

type sampleStep struct {
	line   int
	args   []string // ipvsadm arguments
	conns  bool     // the "-L -n -c | awk | sort" shell pipeline
	body   []string
	status int

	// Shell steps of the form
	//   sh [printf ... |] ipvsadm ARGS 2>&1|2>/dev/null [| head -N]; echo rc=$?
	shell      bool
	stdin      string
	dropStderr bool
	head       int     // 0: all lines
	maskExpire bool    // | sed 's/ [0-9][0-9]:[0-9][0-9] / MM:SS /'
	sort       bool    // | sort
	services   *string // printf ... > /etc/services; first
}

// parseShellStep reads the sh lines the samples use to drive ipvsadm
// directly; it reports false for other shell commands.
func parseShellStep(cmd string) (*sampleStep, bool) {
	cmd, ok := strings.CutSuffix(cmd, "; echo rc=$?")
	if !ok {
		return nil, false
	}
	st := &sampleStep{shell: true}
	if first, rest, ok := strings.Cut(cmd, " > /etc/services; "); ok {
		text := printf(shellWords(first)[1:])
		st.services, cmd = &text, rest
	}
	stages := strings.Split(cmd, " | ")
	if w := shellWords(stages[0]); w[0] == "printf" {
		st.stdin = printf(w[1:])
		stages = stages[1:]
	}
	for _, stage := range stages[1:] {
		switch {
		case strings.HasPrefix(stage, "head -"):
			st.head, _ = strconv.Atoi(strings.TrimPrefix(stage, "head -"))
		case stage == `sed 's/ [0-9][0-9]:[0-9][0-9] / MM:SS /'`:
			st.maskExpire = true
		case stage == "sort":
			st.sort = true
		default:
			return nil, false
		}
	}
	stages = stages[:1]
	w := shellWords(stages[0])
	if w[0] != "ipvsadm" {
		return nil, false
	}
	switch last := w[len(w)-1]; last {
	case "2>&1", "2>/dev/null":
		st.dropStderr = last == "2>/dev/null"
		w = w[:len(w)-1]
	default:
		return nil, false
	}
	st.args = w[1:]
	return st, true
}

// shellWords splits a command line on blanks, honouring single quotes.
func shellWords(s string) []string {
	var words []string
	var b strings.Builder
	quoted, inWord := false, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\'':
			quoted, inWord = !quoted, true
		case c == ' ' && !quoted:
			if inWord {
				words = append(words, b.String())
				b.Reset()
			}
			inWord = false
		default:
			b.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		words = append(words, b.String())
	}
	return words
}

// printf is the shell's printf for the two shapes the samples use.
func printf(args []string) string {
	if args[0] == "--" {
		args = args[1:]
	}
	if args[0] == `%s\n` {
		return strings.Join(args[1:], "\n") + "\n"
	}
	return strings.NewReplacer(`\t`, "\t", `\n`, "\n").Replace(args[0])
}

var decisionLine = regexp.MustCompile(`^\d+ \S+ -> `)

func parseSample(t *testing.T, path string) []*sampleStep {
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	var steps []*sampleStep
	var cur *sampleStep
	for i, l := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
		switch {
		case strings.HasPrefix(l, "# ipvsadm ") || strings.HasPrefix(l, "== ipvsadm "):
			_, args, _ := strings.Cut(l, "ipvsadm ")
			cur = &sampleStep{line: i + 1, args: strings.Fields(args)}
			steps = append(steps, cur)
		case strings.HasPrefix(l, "# sh ipvsadm -L -n -c | tail -n +3 | awk '{print $1, $3, $4, $5, $6}' | sort"):
			cur = &sampleStep{line: i + 1, args: []string{"-L", "-n", "-c"}, conns: true}
			steps = append(steps, cur)
		case strings.HasPrefix(l, "# sh "):
			cur = nil
			if st, ok := parseShellStep(strings.TrimPrefix(l, "# sh ")); ok {
				st.line, cur = i+1, st
				steps = append(steps, cur)
			}
		case strings.HasPrefix(l, "# ! exit status "):
			require.NotNil(t, cur, "%s:%d: status without a step", path, i+1)
			cur.status, err = strconv.Atoi(strings.TrimPrefix(l, "# ! exit status "))
			require.NoError(t, err)
		case strings.HasPrefix(l, "#") || decisionLine.MatchString(l):
			cur = nil
		case cur != nil:
			cur.body = append(cur.body, l)
		}
	}
	return steps
}

func TestKipvsSamples(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(sampleDir(t), "*.out"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	replaySamples(t, files)
}

// TestKipvsEdges replays testdata/kipvs/ipvsadm-edges.out, a kipvs run of
// ipvsadm-edges.scn: grammar corners, every kind of error, restore, daemons
// and the help text, on the oracle VM. That VM has no /etc/services, so
// port names are off for it.
func TestKipvsEdges(t *testing.T) {
	saved := serviceTable
	serviceTable = nil
	t.Cleanup(func() { serviceTable = saved })
	replaySamples(t, []string{"testdata/kipvs/ipvsadm-edges.out", "testdata/kipvs/ipvsadm-edges2.out"})
}

func replaySamples(t *testing.T, files []string) {
	total := 0
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			d := newFakeDirector()
			saved := serviceTable
			t.Cleanup(func() { serviceTable = saved })
			for _, st := range parseSample(t, file) {
				total++
				if st.services != nil {
					serviceTable = parseServices(*st.services)
				}
				injectCounters(t, d, st.args, st)
				var out bytes.Buffer
				var stderr io.Writer = &out
				if st.dropStderr {
					stderr = io.Discard
				}
				status := Run(d, st.args, strings.NewReader(st.stdin), &out, stderr)
				got := out.String()
				if st.conns {
					got = awkConns(got)
				}
				if st.head > 0 {
					lines := strings.SplitAfter(got, "\n")
					got = strings.Join(lines[:min(st.head, len(lines))], "")
				}
				if st.maskExpire {
					got = maskExpire(got)
				}
				if st.sort {
					lines := strings.SplitAfter(got, "\n")
					slices.Sort(lines)
					got = strings.Join(lines, "")
				}
				if st.shell && status == 128+11 {
					got = "Segmentation fault\n" + got // the shell reports the signal
				}
				if st.shell {
					if st.head > 0 || st.maskExpire || st.sort {
						status = 0 // the pipeline's status is its last command's
					}
					got += fmt.Sprintf("rc=%d\n", status)
				}
				want := strings.Join(st.body, "\n")
				if want != "" {
					want += "\n"
				}
				assert.Equal(t, want, got, "%s:%d: ipvsadm %s", file, st.line, strings.Join(st.args, " "))
				if !st.shell {
					assert.Equal(t, st.status, status, "%s:%d: ipvsadm %s: status", file, st.line, strings.Join(st.args, " "))
				}
			}
		})
	}
	t.Logf("%d ipvsadm steps replayed", total)
}

// awkConns is `tail -n +3 | awk '{print $1, $3, $4, $5, $6}' | sort`.
func awkConns(listing string) string {
	lines := strings.Split(strings.TrimSuffix(listing, "\n"), "\n")
	var rows []string
	for _, l := range lines[min(2, len(lines)):] {
		f := strings.Fields(l)
		rows = append(rows, strings.Join([]string{f[0], f[2], f[3], f[4], f[5]}, " "))
	}
	slices.Sort(rows)
	if len(rows) == 0 {
		return ""
	}
	return strings.Join(rows, "\n") + "\n"
}

// injectCounters copies the traffic-made numbers of an expected listing
// into the fake kernel.
func injectCounters(t *testing.T, d *fakeDirector, args []string, st *sampleStep) {
	has := func(s string) bool { return slices.Contains(args, s) }
	if has("-L") && has("--daemon") {
		injectDaemons(t, d, st.body)
		return
	}
	if !has("-L") && !has("-l") || !has("-n") {
		return
	}
	if has("-c") {
		d.conns = nil
		fields := 6
		if st.conns {
			fields = 5 // awk kept five columns
		}
		for _, l := range st.body {
			if f := strings.Fields(l); len(f) < fields || !slices.Contains([]string{"TCP", "UDP", "SCTP", "IP"}, f[0]) {
				continue // titles, messages, rc=
			}
			d.conns = append(d.conns, parseConnRow(t, l, st.conns))
		}
		return
	}
	var svc *ServiceEntry
	for _, l := range st.body {
		f := strings.Fields(l)
		switch {
		case len(f) == 0, strings.HasPrefix(l, "IP Virtual"), strings.HasPrefix(l, "Prot "), l == "  -> RemoteAddress:Port",
			strings.HasPrefix(l, "  -> RemoteAddress:Port "):
		case f[0] == "->":
			require.NotNil(t, svc, "line %d: dest before service", st.line)
			ap := netip.MustParseAddrPort(f[1])
			i := slices.IndexFunc(svc.Dests, func(e DestEntry) bool { return e.AddrPort() == ap })
			require.GreaterOrEqual(t, i, 0, "line %d: no dest %s", st.line, ap)
			setDestCounters(t, &svc.Dests[i], args, f[2:])
		case slices.Contains([]string{"TCP", "UDP", "SCTP", "FWM"}, f[0]):
			var n int
			svc, n = findListed(t, d, f)
			if has("--stats") {
				svc.Stats = parseStats(t, f[n:], false)
			} else if has("--rate") {
				svc.Stats = parseStats(t, f[n:], true)
			}
		}
	}
}

// findListed finds the fake's service of a listing line and says how many
// fields its name takes.
func findListed(t *testing.T, d *fakeDirector, f []string) (*ServiceEntry, int) {
	var k ServiceKey
	n := 2
	if f[0] == "FWM" {
		mark, err := strconv.ParseInt(f[1], 10, 64)
		require.NoError(t, err)
		k = ServiceKey{AF: FamilyIPv4, FWMark: uint32(mark)}
		if len(f) > 2 && f[2] == "IPv6" {
			k.AF, n = FamilyIPv6, 3
		}
	} else {
		ap := netip.MustParseAddrPort(f[1])
		k = ServiceKey{AF: FamilyIPv4, Protocol: map[string]Protocol{"TCP": ProtoTCP, "UDP": ProtoUDP, "SCTP": ProtoSCTP}[f[0]], Addr: ap.Addr(), Port: ap.Port()}
		if ap.Addr().Is6() {
			k.AF = FamilyIPv6
		}
	}
	_, s := d.find(k)
	require.NotNil(t, s, "no service %v", f)
	return s, n
}

func setDestCounters(t *testing.T, e *DestEntry, args []string, f []string) {
	has := func(s string) bool { return slices.Contains(args, s) }
	num := func(s string) uint32 {
		v, err := strconv.ParseUint(s, 10, 32)
		require.NoError(t, err)
		return uint32(v)
	}
	switch {
	case has("--stats"):
		e.Stats = parseStats(t, f, false)
	case has("--rate"):
		e.Stats = parseStats(t, f, true)
	case has("--thresholds"):
		e.ActiveConns, e.InactConns = num(f[2]), num(f[3])
	case has("--persistent-conn"):
		e.PersistConns, e.ActiveConns, e.InactConns = num(f[1]), num(f[2]), num(f[3])
	case has("--tun-info"):
		e.ActiveConns, e.InactConns = num(f[3]), num(f[4])
	default:
		e.ActiveConns, e.InactConns = num(f[2]), num(f[3])
	}
}

// parseStats reads five listed numbers back (K/M/G/T scaled).
func parseStats(t *testing.T, f []string, rate bool) Stats {
	require.Len(t, f, 5)
	var v [5]uint64
	for i, s := range f {
		scale := uint64(1)
		if j := strings.IndexAny(s, "KMGT"); j > 0 {
			scale = map[byte]uint64{'K': 1e3, 'M': 1e6, 'G': 1e9, 'T': 1e12}[s[j]]
			s = s[:j]
		}
		n, err := strconv.ParseUint(s, 10, 64)
		require.NoError(t, err)
		v[i] = n * scale
	}
	if rate {
		return Stats{CPS: v[0], InPPS: v[1], OutPPS: v[2], InBPS: v[3], OutBPS: v[4]}
	}
	return Stats{Conns: v[0], InPkts: v[1], OutPkts: v[2], InBytes: v[3], OutBytes: v[4]}
}

// parseConnRow reads a -c row back: the full row, or the awk'd columns
// (protocol, state, client, virtual, destination).
func parseConnRow(t *testing.T, l string, awked bool) ConnEntry {
	f := strings.Fields(l)
	var c ConnEntry
	if awked {
		f = []string{f[0], "00:00", f[1], f[2], f[3], f[4]}
	}
	require.GreaterOrEqual(t, len(f), 6, "conn row %q", l)
	c.Protocol = map[string]Protocol{"TCP": ProtoTCP, "UDP": ProtoUDP, "SCTP": ProtoSCTP, "IP": ProtoIP}[f[0]]
	var mm, ss int
	if f[1] != "MM:SS" { // masked by the sample's sed
		_, err := fmt.Sscanf(f[1], "%d:%d", &mm, &ss)
		require.NoError(t, err)
	}
	c.Expires = time.Duration(mm*60+ss) * time.Second
	c.State = f[2]
	c.Client, c.Virtual, c.Dest = netip.MustParseAddrPort(f[3]), netip.MustParseAddrPort(f[4]), netip.MustParseAddrPort(f[5])
	if len(f) == 8 {
		c.PEName, c.PEData = f[6], f[7]
	}
	return c
}

// injectDaemons reads a --daemon listing back: the kernel reports its own
// values (the backup's maxlen, for one), which the fake cannot know.
func injectDaemons(t *testing.T, d *fakeDirector, body []string) {
	d.daemons = nil
	re := regexp.MustCompile(`^(master|backup) sync daemon \(mcast=(\S+), syncid=(\d+), maxlen=(\d+), group=(\S+), port=(\d+), ttl=(\d+)\)$`)
	for _, l := range body {
		m := re.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		num := func(s string) int {
			n, err := strconv.Atoi(s)
			require.NoError(t, err)
			return n
		}
		state := DaemonMaster
		if m[1] == "backup" {
			state = DaemonBackup
		}
		d.daemons = append(d.daemons, DaemonSpec{State: state, MCastIfn: m[2], SyncID: uint8(num(m[3])),
			SyncMaxLen: uint16(num(m[4])), MCastGroup: netip.MustParseAddr(m[5]), MCastPort: uint16(num(m[6])), MCastTTL: uint8(num(m[7]))})
	}
}

var expireColumn = regexp.MustCompile(` [0-9][0-9]:[0-9][0-9] `)

// maskExpire is sed 's/ [0-9][0-9]:[0-9][0-9] / MM:SS /' on each line.
func maskExpire(s string) string {
	lines := strings.SplitAfter(s, "\n")
	for i, l := range lines {
		if loc := expireColumn.FindStringIndex(l); loc != nil {
			lines[i] = l[:loc[0]] + " MM:SS " + l[loc[1]:]
		}
	}
	return strings.Join(lines, "")
}
