package scenarios

import (
	"bytes"
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
// ipvsadm refuses at its place in the block.
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
	var es Errors
	for i, r := range rules {
		var out, errb bytes.Buffer
		if ipvsadm.Run(ctl, strings.Fields(r), nil, &out, &errb) == 0 {
			continue
		}
		msg := fmt.Sprintf("ipvsadm %s: %s", r, strings.TrimSpace(errb.String()))
		if i < structured {
			es = append(es, s.src.errorAt("services", "director "+director, msg))
			continue
		}
		e := s.src.errorAt("ipvsadm", "ipvsadm block", msg)
		bl := s.ipvsadmBlock()[i-structured]
		if n := s.src.node("ipvsadm"); n != nil && strings.HasPrefix(n.GetToken().Value, "|") || strings.Contains(s.IPVSADM, "\n") {
			e.Line += bl.n + 1 // a literal block starts on the line after "|"
			e.Col = 3
		}
		es = append(es, e)
	}
	return es
}

// buildLab is the lab to build: Lab with the virtual addresses of the
// services only the ipvsadm block declares, so the director owns them too
// (the block's real servers get no per-mode setup of their own: they are
// wired as the structured services wire them).
func (s *Scenario) buildLab() (*topo.Lab, error) {
	l := s.Lab()
	for _, line := range s.ipvsadmLines() {
		f := strings.Fields(line)
		if len(f) < 3 || (f[0] != "-A" && f[0] != "--add-service") {
			continue
		}
		proto := map[string]string{"-t": "tcp", "--tcp-service": "tcp", "-u": "udp", "--udp-service": "udp", "--sctp-service": "sctp"}[f[1]]
		ap, err := netip.ParseAddrPort(f[2])
		if proto == "" || err != nil {
			continue // a fwmark service has no address of its own
		}
		svc := topo.Service{VIP: ap.Addr(), Port: ap.Port(), Protocol: proto}
		if !slices.ContainsFunc(l.Services, func(o topo.Service) bool { return o.Key() == svc.Key() }) {
			l.Services = append(l.Services, svc)
		}
	}
	return l, l.ApplyServices()
}
