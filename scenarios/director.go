package scenarios

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/lvslab/lvslab/dataplane"
	"github.com/lvslab/lvslab/dataplane/engine"
	"github.com/lvslab/lvslab/dataplane/ipvsadm"
	"github.com/lvslab/lvslab/scheduler"
	"github.com/lvslab/lvslab/topo"
)

// Destination is one real server line of the director's table, kept so
// that faults can edit it with ipvsadm (-e, -d, -a).
type Destination struct {
	Node    string
	Service string // the service key arguments: "-t 192.168.1.110:80"
	Server  string // "10.1.1.2:80"
	Method  string // -m | -g | -i
	Weight  int
	Standby bool
}

// Add is the ipvsadm line that puts the destination in the table.
func (d Destination) Add() []string {
	return d.args("-a", true, d.Weight)
}

// SetWeight is the ipvsadm line that changes its weight.
func (d Destination) SetWeight(w int) []string { return d.args("-e", true, w) }

// Delete is the ipvsadm line that removes it.
func (d Destination) Delete() []string { return d.args("-d", false, 0) }

func (d Destination) args(cmd string, full bool, w int) []string {
	a := append([]string{cmd}, strings.Fields(d.Service)...)
	a = append(a, "-r", d.Server)
	if full {
		a = append(a, d.Method, "-w", fmt.Sprint(w))
	}
	return a
}

// DirectorTable is what the runner loads into a director: the structured
// services (with persistence, without standby real servers) as
// ipvsadm-restore lines, then the scenario's ipvsadm block.
func (s *Scenario) DirectorTable(lab *topo.Lab, director string) (rules []string, dests []Destination, err error) {
	scheds := make([]string, len(s.Services))
	for i := range s.Services {
		scheds[i] = s.Services[i].SchedulerOf()
	}
	lines, err := engine.Rules(lab, director, scheds)
	if err != nil {
		return nil, nil, err
	}
	svc, dest := -1, 0
	var key string
	for _, line := range lines {
		if rest, ok := strings.CutPrefix(line, "-A "); ok {
			svc, dest = svc+1, 0
			key, _, _ = strings.Cut(rest, " -s ")
			if p := s.Services[svc].Persistence; p != nil {
				line += persistenceArgs(p)
			}
			rules = append(rules, line)
			continue
		}
		rs := s.Services[svc].RealServers[dest]
		ld := lab.Services[svc].Dests[dest]
		dest++
		f := strings.Fields(line)
		// -a KEY… -r SERVER METHOD -w W
		d := Destination{Node: ld.Node, Service: key, Server: f[len(f)-4], Method: f[len(f)-3], Weight: ld.Weight, Standby: rs.Standby}
		dests = append(dests, d)
		if !rs.Standby {
			rules = append(rules, line)
		}
	}
	return append(rules, s.ipvsadmLines()...), dests, nil
}

func persistenceArgs(p *Persistence) string {
	a := " -p"
	if p.Timeout != "" {
		n, _ := seconds(p.Timeout)
		a += fmt.Sprintf(" %d", n)
	}
	if p.Netmask != "" {
		a += " -M " + p.Netmask
	}
	return a
}

// ipvsadmLines are the block's commands, without blank lines and comments.
func (s *Scenario) ipvsadmLines() []string {
	var out []string
	for _, l := range s.ipvsadmBlock() {
		out = append(out, l.text)
	}
	return out
}

type blockLine struct {
	n    int // 0-based line of the block
	text string
}

func (s *Scenario) ipvsadmBlock() []blockLine {
	var out []blockLine
	for i, l := range strings.Split(s.IPVSADM, "\n") {
		l = strings.TrimSpace(l)
		l = strings.TrimSpace(strings.TrimPrefix(l, "ipvsadm "))
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		out = append(out, blockLine{i, l})
	}
	return out
}

// checkDirector loads the services and the ipvsadm block into a scratch
// director, line by line as ipvsadm -R would, and reports each line
// ipvsadm refuses at its place in the block. What the block declares is
// read back from the scratch director, so the block's real servers get
// their per-mode setup as the structured ones do (s.block).
func (s *Scenario) checkDirector() Errors {
	lab := s.Lab()
	if lab == nil {
		return nil
	}
	var director string
	for _, n := range lab.Nodes {
		if n.Role == topo.Director {
			director = n.Name
			break
		}
	}
	if director == "" {
		return nil
	}
	rules, _, err := s.DirectorTable(lab, director)
	if err != nil {
		return Errors{s.src.errorAt("services", "director "+director, err.Error())}
	}
	ctl := dataplane.New(scheduler.ProfileCurrent, time.Unix(0, 0)).Control(func() time.Time { return time.Unix(0, 0) })
	structured := len(rules) - len(s.ipvsadmBlock())
	// firstLine is the block line that first put each destination in the
	// table; the structured services' destinations are not the block's.
	firstLine := map[blockDest]int{}
	var es Errors
	for i, r := range rules {
		if i == structured {
			for _, sv := range ctl.Snapshot().Services {
				for _, d := range sv.Dests {
					firstLine[blockDest{sv.Key, d.Addr}] = -1
				}
			}
		}
		var out, errb bytes.Buffer
		if ipvsadm.Run(ctl, strings.Fields(r), nil, &out, &errb) == 0 {
			if i >= structured {
				for _, sv := range ctl.Snapshot().Services {
					for _, d := range sv.Dests {
						if _, ok := firstLine[blockDest{sv.Key, d.Addr}]; !ok {
							firstLine[blockDest{sv.Key, d.Addr}] = i - structured
						}
					}
				}
			}
			continue
		}
		msg := fmt.Sprintf("ipvsadm %s: %s", r, strings.TrimSpace(errb.String()))
		if i < structured {
			es = append(es, s.src.errorAt("services", "director "+director, msg))
			continue
		}
		es = append(es, s.blockError(i-structured, msg))
	}
	if len(es) > 0 || structured == len(rules) {
		return es
	}
	return s.deriveBlock(lab, ctl.Snapshot(), firstLine)
}

// blockDest names a destination of the scratch director.
type blockDest struct {
	svc  ipvsadm.ServiceKey
	addr netip.Addr
}

// blockError is an Error at the i-th command of the ipvsadm block.
func (s *Scenario) blockError(i int, msg string) *Error {
	e := s.src.errorAt("ipvsadm", "ipvsadm block", msg)
	if n := s.src.node("ipvsadm"); n != nil && strings.HasPrefix(n.GetToken().Value, "|") || strings.Contains(s.IPVSADM, "\n") {
		e.Line += s.ipvsadmBlock()[i].n + 1 // a literal block starts on the line after "|"
		e.Col = 3
	}
	return e
}

// deriveBlock turns the services the block declares, as the scratch
// director holds them after the whole block, into the lab model: each
// destination address is the node that owns it. It keeps them in s.block
// and reports, at the block line that added it, a destination no real
// server owns or whose forwarding method the lab cannot wire.
func (s *Scenario) deriveBlock(lab *topo.Lab, snap ipvsadm.Snapshot, firstLine map[blockDest]int) Errors {
	var es Errors
	var block []topo.Service
	var lines [][]int // lines[i][j]: the block line of block[i].Dests[j]
	for _, sv := range snap.Services {
		ts := topo.Service{VIP: sv.Key.Addr, Port: sv.Key.Port, FWMark: sv.Key.FWMark}
		if !sv.Key.IsFWMark() {
			ts.Protocol = map[ipvsadm.Protocol]string{ipvsadm.ProtoTCP: "tcp", ipvsadm.ProtoUDP: "udp", ipvsadm.ProtoSCTP: "sctp"}[sv.Key.Protocol]
		}
		var ln []int
		for _, d := range sv.Dests {
			line := firstLine[blockDest{sv.Key, d.Addr}]
			if line < 0 {
				continue // a structured service's real server
			}
			node := realServerAt(lab, d.Addr)
			if node == "" {
				es = append(es, s.blockError(line, fmt.Sprintf("real server %s is the address of no real server node", d.Addr)))
				continue
			}
			fwd, ok := map[ipvsadm.Method]topo.Forward{ipvsadm.MethodMasq: topo.NAT, ipvsadm.MethodRoute: topo.DR, ipvsadm.MethodTunnel: topo.TUN}[d.Method]
			if !ok {
				continue // a local destination needs no wiring
			}
			ts.Dests = append(ts.Dests, topo.Dest{Node: node, Port: d.Port, Weight: int(d.Weight), Forward: fwd})
			ln = append(ln, line)
		}
		block, lines = append(block, ts), append(lines, ln)
	}
	// The per-mode setup of the block's services alone, so that a problem's
	// path names a block destination.
	lab.Services = block
	var ps topo.Problems
	if err := lab.ApplyServices(); errors.As(err, &ps) {
		for _, p := range ps {
			var i, j int
			if _, err := fmt.Sscanf(p.Path, "services[%d].realservers[%d]", &i, &j); err == nil {
				es = append(es, s.blockError(lines[i][j], p.Object+": "+p.Msg))
			}
		}
	}
	if len(es) == 0 {
		s.block, s.blockLines = block, lines
	}
	return es
}

// realServerAt returns the real server node that owns addr, or "".
func realServerAt(lab *topo.Lab, addr netip.Addr) string {
	for _, n := range lab.Nodes {
		if n.Role != topo.RealServer {
			continue
		}
		for _, ifc := range n.Interfaces {
			for _, p := range ifc.Addresses {
				if p.Addr() == addr {
					return n.Name
				}
			}
		}
	}
	return ""
}

// StartDirector starts the director agent on node of the built lab in,
// loaded with the director's table (DirectorTable: the structured services,
// then the ipvsadm block), once the node's nftables are in (LoadNFTables:
// the fwmark services' marking rules). It returns the agent, the arguments
// it was started with (to restart it) and the table's destinations.
func (s *Scenario) StartDirector(in *topo.Instance, node string) (*topo.Agent, []string, []Destination, error) {
	rules, dests, err := s.DirectorTable(s.Lab(), node)
	if err != nil {
		return nil, nil, nil, err
	}
	if err := s.LoadNFTables(in, node); err != nil {
		return nil, nil, nil, err
	}
	var args []string
	for _, l := range rules {
		args = append(args, "--rule", l)
	}
	a, err := in.StartAgent(node, engine.AgentKind, args...)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("starting director %s: %w", node, err)
	}
	return a, args, dests, nil
}

// BuildLab is the lab to build: Lab with what the ipvsadm block declares
// (its virtual addresses on the director, its real servers wired for their
// forwarding method) added to the structured services. Lab leaves them out
// because the director's table (DirectorTable) loads the block as it is
// written.
func (s *Scenario) BuildLab() (*topo.Lab, error) {
	l := s.Lab()
	for _, bs := range s.block {
		i := slices.IndexFunc(l.Services, func(o topo.Service) bool { return o.Key() == bs.Key() })
		if i < 0 {
			l.Services = append(l.Services, bs)
			continue
		}
		l.Services[i].Dests = append(slices.Clone(l.Services[i].Dests), bs.Dests...)
	}
	return l, l.ApplyServices()
}
