package replay

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/lvslab/lvslab/dataplane"
	"github.com/lvslab/lvslab/dataplane/ipvsadm"
	"github.com/lvslab/lvslab/scheduler"
)

// Options choose how a scenario replays.
type Options struct {
	Profile scheduler.Profile
}

// epoch is where the virtual clock starts; only differences matter.
var epoch = time.Unix(1_000_000_000, 0)

// runner is one replay in progress.
type runner struct {
	sc   *Script
	d    *dataplane.Director
	ctl  *dataplane.Control
	now  time.Time
	out  *bufio.Writer
	seq  int
	sp   map[netip.Addr]int
	held []*held
	nft  ruleset
	errs int
	line []byte // decision line being built
}

// held is a connection kept open by conn ... hold, until close.
type held struct {
	client, target netip.AddrPort
	method         dataplane.Method
	rs             netip.AddrPort // where replies come from (NAT)
	keepalive      time.Time      // when both ends next probe
	id             dataplane.ConnID
}

// Run replays sc and writes kipvs's output to w. It returns an error only
// for a step that cannot run (kipvs's "#ERROR" cases); ipvsadm failures are
// part of the output.
func Run(sc *Script, opts Options, w io.Writer) error {
	r := &runner{
		sc:  sc,
		d:   dataplane.New(opts.Profile, epoch),
		now: epoch,
		out: bufio.NewWriter(w),
		sp:  map[netip.Addr]int{},
	}
	r.ctl = r.d.Control(func() time.Time { return r.now })
	defer r.out.Flush()

	r.printf("# kernel lvslab replay, kernel profile %s\n", opts.Profile)
	replies := "direct to client"
	if !sc.DirectReplies {
		replies = "through the director"
	}
	r.printf("# topology: %d real servers, %d client addresses, %d VIPs; DR/TUN replies %s\n",
		len(sc.RSs), len(sc.Clients), len(sc.VIPs), replies)
	for _, st := range sc.Steps {
		if err := r.step(st); err != nil {
			return &Error{File: sc.Name, Line: st.Line, Err: err}
		}
		if r.now.Sub(epoch) > sc.Timeout {
			// kipvs's limit, on the virtual clock.
			r.printf("\n#ERROR scenario timed out after %v\n", sc.Timeout)
			return &Error{File: sc.Name, Line: st.Line, Err: fmt.Errorf("scenario timed out after %v", sc.Timeout)}
		}
	}
	if sc.StatsWait > 0 {
		r.waitStats(sc.StatsWait)
	}
	for _, l := range [][]string{{"-L", "-n"}, {"-L", "-n", "--stats"}, {"-S", "-n"}} {
		r.printf("== ipvsadm %s\n", strings.Join(l, " "))
		if st := r.ipvsadm(l, r.out); st != 0 {
			r.printf("# ! exit status %d\n", st)
		}
	}
	if r.errs > 0 {
		r.printf("# %d failed steps\n", r.errs)
	}
	return nil
}

// decide prints one decision line: "SEQ CLIENT -> RS", with
// " reply-from=RS" for an untranslated reply, or "SEQ CLIENT -> FAIL".
func (r *runner) decide(client, rs netip.AddrPort, replyFrom bool, fail string) {
	r.seq++
	b := strconv.AppendInt(r.line[:0], int64(r.seq), 10)
	b = append(b, ' ')
	b = client.AppendTo(b)
	b = append(b, " -> "...)
	if fail != "" {
		b = append(b, fail...)
	} else {
		b = rs.AppendTo(b)
		if replyFrom {
			b = append(b, " reply-from="...)
			b = rs.AppendTo(b)
		}
	}
	b = append(b, '\n')
	r.out.Write(b)
	r.line = b
}

func (r *runner) printf(format string, a ...any) { fmt.Fprintf(r.out, format, a...) }

// advance moves the virtual clock; the director's timers run, and held
// connections exchange their keepalives on the way.
//
// The clock never runs past the scenario's timeout: the step ends there
// and the run stops with kipvs's timeout error.
func (r *runner) advance(d time.Duration) {
	end := r.now.Add(d)
	if deadline := epoch.Add(r.sc.Timeout + time.Nanosecond); end.After(deadline) {
		end = deadline
	}
	for {
		var next *held
		for _, h := range r.held {
			if next == nil || h.keepalive.Before(next.keepalive) {
				next = h
			}
		}
		if next == nil || next.keepalive.After(end) {
			break
		}
		r.now = next.keepalive
		r.keepalive(next)
	}
	r.now = end
	r.d.Advance(r.now)
}

// waitStats is kipvs's wait for the estimator: until its next tick, at most max.
func (r *runner) waitStats(max time.Duration) {
	wait := r.d.NextEstimate().Sub(r.now)
	if wait > max {
		wait = max
	}
	r.advance(wait)
}

func (r *runner) ipvsadm(args []string, w io.Writer) int {
	return ipvsadm.Run(r.ctl, args, strings.NewReader(""), w, w)
}

func (r *runner) step(st Step) error {
	switch st.Verb {
	case "ipvsadm":
		r.printf("# %s\n", st.Raw)
		if s := r.ipvsadm(st.Args, r.out); s != 0 {
			r.errs++
			r.printf("# ! exit status %d\n", s)
		}
	case "sh":
		r.printf("# %s\n", st.Raw)
		return r.sh(st)
	case "nft":
		r.printf("# %s\n", st.Raw)
		c, err := parseNft(st.Sh)
		if err == nil {
			err = r.nft.apply(c)
		}
		if err != nil {
			r.errs++
			r.printf("%s\n# ! exit status 1\n", err)
		}
	case "sysctl":
		for _, kv := range st.Args {
			k, v, _ := strings.Cut(kv, "=")
			r.printf("# sysctl %s=%s\n", k, v)
			if err := r.sysctl(k, v); err != nil {
				r.errs++
				r.printf("# ! %v\n", err)
			}
		}
	case "echo":
		r.printf("# %s\n", strings.TrimSpace(strings.TrimPrefix(st.Raw, "echo")))
	case "sleep", "wait":
		d, _ := parseDur(st.Args[0])
		r.printf("# sleep %s\n", st.Args[0])
		r.advance(d)
	case "waitstats":
		r.printf("# waitstats\n")
		r.waitStats(2500 * time.Millisecond)
	case "close":
		who := "*"
		if len(st.Args) > 0 {
			who = st.Args[0]
		}
		r.printf("# close %s\n", who)
		r.closeHeld(who)
	case "conn":
		return r.conns(st)
	}
	return nil
}

// sysctl writes a director sysctl; net.ipv4.vs.* reach the core, others
// (forwarding and the like) concern the lab, not IPVS.
func (r *runner) sysctl(key, val string) error {
	path := "/proc/sys/" + strings.ReplaceAll(key, ".", "/")
	if !strings.HasPrefix(key, "net.ipv4.vs.") {
		return nil
	}
	err := r.d.SetSysctl(key, val)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, dataplane.ErrNoSysctl):
		return fmt.Errorf("open %s: no such file or directory", path)
	case errors.Is(err, syscall.EINVAL):
		return fmt.Errorf("write %s: invalid argument", path)
	}
	return err
}

// sh runs the ipvsadm command of an sh step against the replay's director
// and feeds its output to the rest of the pipeline, run by /bin/sh.
func (r *runner) sh(st Step) error {
	var buf bytes.Buffer
	status := r.ipvsadm(st.Sh[1:], &buf)
	if st.Pipe == "" {
		r.out.Write(buf.Bytes())
		if status != 0 {
			r.errs++
			r.printf("# ! exit status %d\n", status)
		}
		return nil
	}
	cmd := exec.Command("/bin/sh", "-c", st.Pipe)
	cmd.Stdin = &buf
	out, err := cmd.CombinedOutput()
	r.out.Write(out)
	if err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			return fmt.Errorf("sh: %w", err)
		}
		r.errs++
		r.printf("# ! %v\n", err)
	}
	return nil
}

func (r *runner) conns(st Step) error {
	cs := st.Conn
	tgt := cs.Target
	if !cs.HasTgt {
		tgt = r.sc.DefaultTarget
	}
	if cs.Sport != 0 {
		r.sp[cs.Client] = cs.Sport
	}
	r.printf("# %s\n", st.Raw)
	for k := 0; k < cs.Count; k++ {
		sp := r.sp[cs.Client]
		if sp == 0 {
			sp = 10000
		}
		if sp > 65535 {
			return fmt.Errorf("source ports of %v exhausted", cs.Client)
		}
		r.sp[cs.Client] = sp + 1
		client := netip.AddrPortFrom(cs.Client, uint16(sp))
		if cs.UDP {
			r.udp(client, tgt, cs)
		} else {
			r.tcp(client, tgt, cs)
		}
		if cs.Gap > 0 && k+1 < cs.Count {
			r.advance(cs.Gap)
		}
	}
	return nil
}
