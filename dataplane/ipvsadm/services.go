package ipvsadm

import (
	_ "embed"
	"strconv"
	"strings"
)

// servicesFile is the port-name table ipvsadm reads through getservbyname
// and getservbyport. It is built in so that listings do not depend on the
// machine's /etc/services.
//
//go:embed services.txt
var servicesFile string

type serviceEntry struct {
	names []string // official name first, then aliases
	port  uint16
	proto Protocol
}

var serviceTable = parseServices(servicesFile)

func parseServices(text string) []serviceEntry {
	var out []serviceEntry
	for _, line := range strings.Split(text, "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || strings.HasPrefix(f[0], "#") {
			continue
		}
		port, proto, ok := strings.Cut(f[1], "/")
		n, err := strconv.ParseUint(port, 10, 16)
		if !ok || err != nil {
			continue
		}
		p := map[string]Protocol{"tcp": ProtoTCP, "udp": ProtoUDP, "sctp": ProtoSCTP}[proto]
		out = append(out, serviceEntry{names: append([]string{f[0]}, f[2:]...), port: uint16(n), proto: p})
	}
	return out
}

// serviceToPort is getservbyname for the service's protocol (ipvsadm's
// service_to_port); protocols other than TCP, UDP and SCTP have no names.
func serviceToPort(name string, proto Protocol) (uint16, bool) {
	for _, e := range serviceTable {
		if e.proto != proto {
			continue
		}
		for _, n := range e.names {
			if n == name {
				return e.port, true
			}
		}
	}
	return 0, false
}

// portToService is getservbyport's official name (port_to_service).
func portToService(port uint16, proto Protocol) (string, bool) {
	for _, e := range serviceTable {
		if e.proto == proto && e.port == port {
			return e.names[0], true
		}
	}
	return "", false
}
