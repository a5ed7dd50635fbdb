package fwdbench

import (
	"fmt"
	"net/netip"

	"github.com/lvslab/lvslab/dataplane/packetio"
)

// Dataplane names, as bench.json rows carry them.
const (
	KernelRoute = "kernel-route"
	NftDNAT     = "nft-dnat"
	LvslabNAT   = "lvslab-nat"      // recvmmsg/sendmmsg
	LvslabRing  = "lvslab-nat-ring" // TPACKET_V2 receive ring, sendmmsg
)

// Dataplanes lists what Run compares, baseline first.
var Dataplanes = []string{KernelRoute, NftDNAT, LvslabNAT, LvslabRing}

// Active is a dataplane set up in the lab's director.
type Active struct {
	Name   string
	Target netip.Addr // where clients send: the server itself, or the VIP
	nat    *NAT
	lab    *Lab
	// Stats holds the userspace forwarder's counters after Stop.
	Stats []WorkerStats
}

// dropTable keeps the director's kernel off the packets the userspace
// forwarder handles: a netdev ingress hook runs after the packet taps
// (AF_PACKET has its copy by then), so the kernel neither forwards nor
// answers (no RST for a SYN to the VIP), while ARP still gets answered.
func dropTable() string {
	return fmt.Sprintf(`table netdev lvsdrop {
	chain client { type filter hook ingress device %q priority 0; meta protocol { ip, ip6 } counter drop; }
	chain server { type filter hook ingress device %q priority 0; meta protocol { ip, ip6 } counter drop; }
}
`, DirClientIf, DirServerIf)
}

// Start sets the director up as dataplane name (workers: userspace
// forwarder threads).
func (l *Lab) Start(name string, workers int, observe func(int, packetio.Side, netip.AddrPort)) (*Active, error) {
	a := &Active{Name: name, lab: l, Target: l.VIP}
	var err error
	switch name {
	case KernelRoute:
		a.Target = l.ServerAddr
		err = Sysctl(l.Director, "net.ipv4.ip_forward", "1")
	case NftDNAT:
		if err = Sysctl(l.Director, "net.ipv4.ip_forward", "1"); err == nil {
			err = Nft(l.Director, fmt.Sprintf(`table ip lvsnat {
	chain pre { type nat hook prerouting priority dstnat; ip daddr %s dnat to numgen inc mod 2 map { 0 : %s, 1 : %s }; }
}
`, l.VIP, l.ServerAddr, l.ServerAddr))
		}
	case LvslabNAT, LvslabRing:
		if err = Sysctl(l.Director, "net.ipv4.ip_forward", "0"); err != nil {
			break
		}
		if err = Nft(l.Director, dropTable()); err != nil {
			break
		}
		a.nat, err = StartNAT(NATConfig{
			Netns: NetnsPath(l.Director), ClientIf: DirClientIf, ServerIf: DirServerIf,
			VIP: l.VIP, RIP: l.ServerAddr, ClientMAC: l.ClientMAC, ServerMAC: l.ServerMAC,
			DirClientMAC: l.DirClientMAC, DirServMAC: l.DirServMAC, MTU: 1500, Workers: workers, Observe: observe, Ring: name == LvslabRing,
		})
	default:
		return nil, fmt.Errorf("fwdbench: unknown dataplane %q", name)
	}
	if err != nil {
		a.Stop()
		return nil, err
	}
	return a, nil
}

// Stop undoes Start, leaving the director as NewLab built it.
func (a *Active) Stop() error {
	var err error
	if a.nat != nil {
		a.Stats, err = a.nat.Stop()
		a.nat = nil
	}
	Sysctl(a.lab.Director, "net.ipv4.ip_forward", "0")
	for _, t := range []string{"ip lvsnat", "netdev lvsdrop"} {
		Cmd(a.lab.Director, "nft", "delete", "table", t).Run() // absent tables are fine
	}
	return err
}

// DropCount returns how many packets the director kernel's netdev ingress
// drop has taken (lvslab-nat only).
func (l *Lab) DropCount() (uint64, error) {
	out, err := Cmd(l.Director, "nft", "-j", "list", "table", "netdev", "lvsdrop").Output()
	if err != nil {
		return 0, fmt.Errorf("nft list: %w", err)
	}
	return sumCounters(out)
}
