package scenarios

import (
	"fmt"
	"os/exec"
	"slices"
	"strconv"
	"strings"

	"github.com/lvslab/lvslab/topo"
)

// StartRealServer starts what real server node runs in the built lab in,
// once the node's nftables are in (LoadNFTables): the built-in server as an agent (returned with the arguments it was
// started with, to restart it after a kill fault), or a server block's
// command (returned as the started command). A node that serves nothing
// returns neither. Both survive the caller in a detached lab, as
// `lvslab up` needs; lab teardown ends them.
func (s *Scenario) StartRealServer(in *topo.Instance, node string) (*topo.Agent, []string, *exec.Cmd, error) {
	var n Node
	for _, m := range s.Nodes {
		if m.Name == node {
			n = m
		}
	}
	if err := s.LoadNFTables(in, node); err != nil {
		return nil, nil, nil, err
	}
	sv := s.serverOf(in.Lab, n)
	if sv == nil {
		return nil, nil, nil, nil
	}
	if sv.Kind == "command" {
		cmd := exec.Command("/bin/sh", "-c", sv.Command)
		if err := in.Start(node, cmd); err != nil {
			return nil, nil, nil, fmt.Errorf("node %s: starting %q: %w", node, sv.Command, err)
		}
		return nil, nil, cmd, nil
	}
	kind := sv.Kind
	if kind == "" {
		kind = "http"
	}
	args := []string{"--listen", fmt.Sprintf("0.0.0.0:%d", sv.Ports[0]), "--ports", portList(sv.Ports[1:]), "--kind", kind, "--id", node,
		"--response-bytes", fmt.Sprint(sv.ResponseBytes), "--service-time", sv.ServiceTime,
		"--max-concurrency", fmt.Sprint(sv.MaxConcurrency), "--max-queue", fmt.Sprint(sv.MaxQueue)}
	a, err := in.StartAgent(node, RealServerAgent, args...)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("starting the real server on %s: %w", node, err)
	}
	return a, args, nil, nil
}

// serverOf is what a real server node runs: its server block, or a
// built-in server of its first service's protocol. Ports holds every port
// it listens on: the block's port or ports, or by default every port its
// services send to (for a fwmark service with real servers of port 0,
// the ports its marking rule names).
func (s *Scenario) serverOf(lab *topo.Lab, n Node) *Server {
	var sv Server
	if n.Server != nil {
		sv = *n.Server
	}
	if sv.Port != 0 {
		sv.Ports = []int{sv.Port}
	}
	given := len(sv.Ports) > 0
	marks := s.markRules()
	for i, svc := range lab.Services {
		var mark *markRule
		if i < len(marks) {
			mark = marks[i]
		}
		for _, d := range svc.Dests {
			if d.Node != n.Name {
				continue
			}
			ports := []int{int(d.Port)}
			if d.Port == 0 && mark != nil {
				ports = mark.portList() // the client's port is kept
			}
			for _, p := range ports {
				if !given && p != 0 && !slices.Contains(sv.Ports, p) {
					sv.Ports = append(sv.Ports, p)
				}
			}
			if sv.Kind == "" && (svc.Protocol == "udp" || mark != nil && mark.protocol == "udp") {
				sv.Kind = "udp"
			}
		}
	}
	if len(sv.Ports) == 0 && sv.Kind != "command" {
		return nil // serves nothing
	}
	return &sv
}

// portList writes ports as the realserver agent's --ports takes them.
func portList(ports []int) string {
	s := make([]string, len(ports))
	for i, p := range ports {
		s[i] = strconv.Itoa(p)
	}
	return strings.Join(s, ",")
}
