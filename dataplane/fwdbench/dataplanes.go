package fwdbench

import (
	"errors"
	"fmt"
	"net/netip"
	"os"

	"github.com/lvslab/lvslab/dataplane/packetio"
)

// Dataplane names, as bench.json rows carry them.
const (
	KernelRoute = "kernel-route"
	NftDNAT     = "nft-dnat"
	LvslabNAT   = "lvslab-nat"      // recvmmsg/sendmmsg
	LvslabRing  = "lvslab-nat-ring" // TPACKET_V2 receive ring, sendmmsg
	LvslabDR    = "lvslab-dr"       // direct routing, recvmmsg/sendmmsg
)

// Dataplanes lists what Run compares, baseline first.
var Dataplanes = []string{KernelRoute, NftDNAT, LvslabNAT, LvslabRing, LvslabDR}

// Active is a dataplane set up in the lab's director.
type Active struct {
	Name   string
	Target netip.Addr // where clients send: the server itself, or the VIP
	nat    *NAT
	off    *packetio.KernelOff
	lab    *Lab
	// Stats holds the userspace forwarder's counters after Stop.
	Stats []WorkerStats
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
	case LvslabNAT, LvslabRing, LvslabDR:
		if err = Sysctl(l.Director, "net.ipv4.ip_forward", "0"); err != nil {
			break
		}
		if a.off, err = kernelOff(l.Director); err != nil {
			break
		}
		a.nat, err = StartNAT(NATConfig{
			Netns: NetnsPath(l.Director), ClientIf: DirClientIf, ServerIf: DirServerIf,
			VIP: l.VIP, RIP: l.ServerAddr, ClientMAC: l.ClientMAC, ServerMAC: l.ServerMAC,
			DirClientMAC: l.DirClientMAC, DirServMAC: l.DirServMAC, MTU: 1500, Workers: workers, Observe: observe, Ring: name == LvslabRing, DR: name == LvslabDR,
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
	if a.off != nil {
		err = errors.Join(err, a.off.Close())
		a.off = nil
	}
	Sysctl(a.lab.Director, "net.ipv4.ip_forward", "0")
	Cmd(a.lab.Director, "nft", "delete", "table", "ip", "lvsnat").Run() // absent is fine
	return err
}

// kernelOff installs packetio.KernelOff on the director's two interfaces.
func kernelOff(netns string) (*packetio.KernelOff, error) {
	f, err := os.Open(NetnsPath(netns))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return packetio.NewKernelOff(int(f.Fd()), DirClientIf, DirServerIf)
}

// DropCount returns how many packets the director kernel's netdev ingress
// drop has taken (lvslab dataplanes only).
func (a *Active) DropCount() (uint64, error) {
	if a.off == nil {
		return 0, fmt.Errorf("fwdbench: %s does not keep the kernel off", a.Name)
	}
	return a.off.Dropped()
}
