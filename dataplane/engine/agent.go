package engine

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"

	"github.com/lvslab/lvslab/dataplane"
	"github.com/lvslab/lvslab/dataplane/parse"
	"github.com/lvslab/lvslab/topo"
	"github.com/lvslab/lvslab/topo/agent"
)

// AgentKind is the agent kind of a running director.
const AgentKind = "director"

func init() { agent.Register(AgentKind, runAgent) }

// stringList is a repeatable flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, "; ") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

// runAgent is `lvslab agent … director [--rule LINE]… [--batch N]
// [--workers N]`: the
// engine on every interface of the node, the rules loaded as by
// ipvsadm -R, the control socket served until the agent is stopped.
func runAgent(ctx context.Context, env *agent.Env, args []string) error {
	fs := flag.NewFlagSet(AgentKind, flag.ContinueOnError)
	var rules stringList
	fs.Var(&rules, "rule", "an ipvsadm-restore line (-A …, -a …); repeatable")
	batch := fs.Int("batch", 64, "frames per read and write")
	workers := fs.Int("workers", 1, "packet goroutines sharing the core")
	fragTimeout := fs.Duration("frag-timeout", 0, "how long fragments wait for their datagram's rest (ipfrag_time; 30s)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	e, err := Start(Config{Batch: *batch, Workers: *workers, Services: keepKernelOff, FragTimeout: *fragTimeout})
	if err != nil {
		return err
	}
	defer func() {
		err := e.Close()
		c := e.Counters()
		fmt.Fprintf(os.Stderr, "director: frames %d in %d out %d icmp-in %d icmp-out %d replies %d segmented %d dropped %d no-route %d unsendable %d queued %d queue-errors %d sockets %+v\n",
			c.Frames, c.In, c.Out, c.ICMPIn, c.ICMPOut, c.Replies, c.Segmented, c.Dropped, c.NoRoute, c.Unsendable, c.Queued, c.QueueErrs, c.Socket)
		for r, n := range c.Reasons {
			if n > 0 && parse.Reason(r) != parse.OK {
				fmt.Fprintf(os.Stderr, "director: %s %d\n", parse.Reason(r), n)
			}
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "director: %v\n", err)
		}
	}()
	if len(rules) > 0 {
		var stdout, stderr strings.Builder
		if code := e.Ipvsadm([]string{"-R"}, strings.NewReader(strings.Join(rules, "\n")+"\n"), &stdout, &stderr); code != 0 {
			return fmt.Errorf("loading the services: ipvsadm -R exit status %d: %s", code, strings.TrimSpace(stderr.String()))
		}
	}
	l, err := env.Listen()
	if err != nil {
		return err
	}
	defer l.Close()
	go e.Serve(l)
	env.Ready()
	<-ctx.Done()
	return ctx.Err()
}

// keepKernelOff keeps the namespace's drop sets equal to the services: the
// kernel neither answers a packet the engine takes nor ignores one no
// service takes (it answers that itself, as a director does: an echo reply,
// a RST for a port without a service).
func keepKernelOff(added, removed []dataplane.ServiceKey) {
	var errs []error
	if len(added) > 0 {
		errs = append(errs, topo.AddDropServices(-1, dropServices(added)...))
	}
	if len(removed) > 0 {
		errs = append(errs, topo.DelDropServices(-1, dropServices(removed)...))
	}
	if err := errors.Join(errs...); err != nil {
		fmt.Fprintf(os.Stderr, "director: service drop sets: %v\n", err)
	}
}

func dropServices(keys []dataplane.ServiceKey) []topo.DropService {
	ds := make([]topo.DropService, len(keys))
	for i, k := range keys {
		ds[i] = topo.DropService{Proto: k.Proto, Addr: k.Addr, Port: k.Port}
	}
	return ds
}

// Rules turns the lab's virtual services into ipvsadm-restore lines for
// the director node: -A per service with its scheduler (schedulers[i] for
// lab.Services[i], ipvsadm's wlc when empty), -a per real server at the
// node's address on a network it shares with the director (else its first
// address: a TUN real server behind a router), with its forwarding method.
func Rules(lab *topo.Lab, director string, schedulers []string) ([]string, error) {
	dn := lab.Node(director)
	if dn == nil {
		return nil, fmt.Errorf("no director node %q", director)
	}
	var lines []string
	for i, s := range lab.Services {
		var key string
		switch {
		case s.FWMark != 0:
			key = "-f " + strconv.FormatUint(uint64(s.FWMark), 10)
		case s.Protocol == "udp":
			key = "-u " + netip.AddrPortFrom(s.VIP, s.Port).String()
		case s.Protocol == "sctp":
			key = "--sctp-service " + netip.AddrPortFrom(s.VIP, s.Port).String()
		default:
			key = "-t " + netip.AddrPortFrom(s.VIP, s.Port).String()
		}
		sched := "wlc"
		if i < len(schedulers) && schedulers[i] != "" {
			sched = schedulers[i]
		}
		lines = append(lines, fmt.Sprintf("-A %s -s %s", key, sched))
		for _, d := range s.Dests {
			rip, ok := destAddr(lab, dn, d.Node)
			if !ok {
				return nil, fmt.Errorf("service %s: real server %q has no address", s.Key(), d.Node)
			}
			server := rip.String()
			if d.Port != 0 {
				server = netip.AddrPortFrom(rip, d.Port).String()
			}
			method := map[topo.Forward]string{topo.NAT: "-m", topo.DR: "-g", topo.TUN: "-i"}[d.Forward]
			if method == "" {
				return nil, fmt.Errorf("service %s: real server %q: unknown forwarding method %q", s.Key(), d.Node, d.Forward)
			}
			lines = append(lines, fmt.Sprintf("-a %s -r %s %s -w %d", key, server, method, d.Weight))
		}
	}
	return lines, nil
}

func destAddr(lab *topo.Lab, director *topo.Node, name string) (netip.Addr, bool) {
	n := lab.Node(name)
	if n == nil {
		return netip.Addr{}, false
	}
	for _, ifc := range director.Interfaces {
		if a, ok := n.Address(ifc.Network); ok {
			return a, true
		}
	}
	if len(n.Interfaces) > 0 && len(n.Interfaces[0].Addresses) > 0 {
		return n.Interfaces[0].Addresses[0].Addr(), true
	}
	return netip.Addr{}, false
}
