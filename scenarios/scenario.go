// Package scenarios owns the scenario file: its schema, the parser that keeps
// a position for every value so each error reads file:line:col, validation,
// and the translation of the topology half into the lab model (topo.Lab).
//
// A Scenario is the whole file; its Topology part (networks, nodes, services)
// is what a lab is built from. Later parts of the format (load phases, faults,
// expectations, health checks, ipvsadm blocks) are further fields of Scenario
// decoded by the same machinery: every yaml tag a struct declares is a known
// key, any other key is an error at its position.
package scenarios

import "github.com/lvslab/lvslab/topo"

// Scenario is one parsed scenario file.
type Scenario struct {
	Name        string `yaml:"name"`
	Description string `yaml:"description"`
	Topology    `yaml:",inline"`
	Timeline    `yaml:",inline"`

	src        *source // positions for errors found after parsing
	lab        labResult
	block      []topo.Service // what the ipvsadm block declares, wired like Services
	blockLines [][]int        // blockLines[i][j]: the block line that added block[i].Dests[j]
}

// Topology is the part of a scenario that becomes a lab.
type Topology struct {
	Networks []Network `yaml:"networks"`
	Nodes    []Node    `yaml:"nodes"`
	Services []Service `yaml:"services"`
}

// Network is an L2 segment.
type Network struct {
	Name   string `yaml:"name"`
	Subnet string `yaml:"subnet"` // 10.1.1.0/24
	MTU    int    `yaml:"mtu"`    // default 1500
}

// Node is one machine of the lab.
type Node struct {
	Name       string      `yaml:"name"`
	Role       string      `yaml:"role"` // client | director | realserver | router
	Interfaces []Interface `yaml:"interfaces"`
	// SourceAddresses are extra addresses of a client, for schedulers and
	// persistence that key on the client address: "A-B", "A", a CIDR, or a
	// comma-separated list of those.
	SourceAddresses string            `yaml:"source_addresses"`
	Routes          []Route           `yaml:"routes"`
	Sysctls         map[string]string `yaml:"sysctls"` // override the derived ones
	// Server is the program a real server runs during lvslab run.
	Server *Server `yaml:"server"`
	// NFTables is the node's own nftables ruleset (nft -f syntax), loaded
	// into its namespace before anything starts there: on a director the
	// marking rules of an ipvsadm block's fwmark (-f) services, as
	// operators write them.
	NFTables string `yaml:"nftables"`
}

// Interface attaches a node to a network.
type Interface struct {
	Network string `yaml:"network"`
	Address string `yaml:"address"`
}

// Route is a static route; To is a prefix or "default".
type Route struct {
	To  string `yaml:"to"`
	Via string `yaml:"via"`
}

// Service is a virtual service in structured form.
type Service struct {
	// VIP is the service's address and port (192.168.1.110:80; port 0:
	// all ports), or with fwmark the addresses it covers: one, or a list.
	VIP      OneOrMore `yaml:"vip"`
	Protocol string    `yaml:"protocol"` // tcp (default) | udp | sctp; with fwmark, narrows its marking rule
	FWMark   uint32    `yaml:"fwmark"`
	// Ports narrow a fwmark service's marking rule to these ports and
	// ranges (80, 8000-8010); every port when empty.
	Ports       OneOrMore    `yaml:"ports"`
	Scheduler   string       `yaml:"scheduler"` // default wlc, as ipvsadm
	RealServers []RealServer `yaml:"realservers"`
	Persistence *Persistence `yaml:"persistence"`
	HealthCheck *HealthCheck `yaml:"health_check"`
}

// RealServer is a destination of a virtual service.
type RealServer struct {
	Node    string `yaml:"node"`
	Port    *int   `yaml:"port"`    // default: the service's port
	Weight  *int   `yaml:"weight"`  // default 1
	Forward string `yaml:"forward"` // nat | dr (default, as ipvsadm) | tun
	// Standby real servers are wired into the lab but left out of the
	// director's table until a fault adds them (scaling out live).
	Standby bool `yaml:"standby"`

	sorry bool // the service's sorry server, standing by for its health check
}
