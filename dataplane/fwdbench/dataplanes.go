package fwdbench

import (
	"errors"
	"fmt"
	"net/netip"
	"os"

	"github.com/lvslab/lvslab/dataplane/engine"
	"github.com/lvslab/lvslab/dataplane/packetio"
)

// Dataplane names, as bench.json rows carry them.
const (
	KernelRoute = "kernel-route"
	NftDNAT     = "nft-dnat"
	// The director: dataplane/engine with the lab's virtual services
	// (connection table, rr scheduler, transmit), NAT or direct routing.
	LvslabNAT = "lvslab-nat"
	LvslabDR  = "lvslab-dr"
	LvslabTUN = "lvslab-tun" // the server decapsulates in userspace (topo/ipipd)
	// The static forwarder of this package: one mapping, no connection
	// table, no scheduler — the packet I/O's ceiling.
	StaticNAT  = "afpacket-nat-static"      // recvmmsg/sendmmsg
	StaticRing = "afpacket-nat-ring-static" // TPACKET_V2 receive ring, sendmmsg
	StaticDR   = "afpacket-dr-static"       // direct routing, recvmmsg/sendmmsg
)

// Dataplanes lists what Run compares by default, baseline first.
var Dataplanes = []string{KernelRoute, NftDNAT, LvslabNAT, LvslabDR, LvslabTUN, StaticNAT}

// AllDataplanes lists every dataplane Start knows.
var AllDataplanes = []string{KernelRoute, NftDNAT, LvslabNAT, LvslabDR, LvslabTUN, StaticNAT, StaticRing, StaticDR}

// Active is a dataplane set up in the lab's director.
type Active struct {
	Name   string
	Target netip.Addr // where clients send: the server itself, or the VIP
	nat    *NAT
	eng    *engine.Engine
	decap  *decap
	off    *packetio.KernelOff
	lab    *Lab
	// Stats holds the static forwarder's counters after Stop, Engine the
	// director's.
	Stats  []WorkerStats
	Engine engine.Counters
}

// Start sets the director up as dataplane name (workers: userspace
// forwarder threads, of the engine or the static forwarder).
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
	case LvslabNAT:
		if err = Sysctl(l.Director, "net.ipv4.ip_forward", "0"); err != nil {
			break
		}
		if a.off, err = kernelOff(l.Director, DirClientIf, DirServerIf); err != nil {
			break
		}
		a.eng, err = l.startEngine("-m", workers)
	case LvslabDR, LvslabTUN:
		// Direct routing and tunnelling: the kernel never sees VIP traffic
		// (dropped on the client side) but routes the real server's
		// replies back to the client, as the router next to a DR or TUN
		// director would. Their
		// source is the VIP, an address of this namespace, which the
		// kernel takes for a martian unless told to accept it.
		for _, kv := range [][2]string{{"net.ipv4.ip_forward", "1"}, {"net.ipv4.conf.all.accept_local", "1"},
			{"net.ipv4.conf.all.rp_filter", "0"}, {"net.ipv4.conf." + DirServerIf + ".rp_filter", "0"}} {
			if err = Sysctl(l.Director, kv[0], kv[1]); err != nil {
				break
			}
		}
		if err != nil {
			break
		}
		if a.off, err = kernelOff(l.Director, DirClientIf); err != nil {
			break
		}
		if name == LvslabDR {
			a.eng, err = l.startEngine("-g", workers)
			break
		}
		if a.decap, err = l.startDecap(); err != nil {
			break
		}
		a.eng, err = l.startEngine("-i", workers)
	case StaticNAT, StaticRing, StaticDR:
		if err = Sysctl(l.Director, "net.ipv4.ip_forward", "0"); err != nil {
			break
		}
		if a.off, err = kernelOff(l.Director, DirClientIf, DirServerIf); err != nil {
			break
		}
		a.nat, err = StartNAT(NATConfig{
			Netns: NetnsPath(l.Director), ClientIf: DirClientIf, ServerIf: DirServerIf,
			VIP: l.VIP, RIP: l.ServerAddr, ClientMAC: l.ClientMAC, ServerMAC: l.ServerMAC,
			DirClientMAC: l.DirClientMAC, DirServMAC: l.DirServMAC, MTU: 1500, Workers: workers, Observe: observe, Ring: name == StaticRing, DR: name == StaticDR,
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
	if a.eng != nil {
		a.Engine = a.eng.Counters()
		err = errors.Join(err, a.eng.Close())
		a.eng = nil
	}
	if a.decap != nil {
		err = errors.Join(err, a.decap.Stop())
		a.decap = nil
	}
	if a.off != nil {
		err = errors.Join(err, a.off.Close())
		a.off = nil
	}
	Sysctl(a.lab.Director, "net.ipv4.ip_forward", "0")
	Sysctl(a.lab.Director, "net.ipv4.conf.all.accept_local", "0")
	Cmd(a.lab.Director, "nft", "delete", "table", "ip", "lvsnat").Run() // absent is fine
	return err
}

// Forwarded returns how many packets the director (the engine) forwarded
// so far, and false for the other dataplanes.
func (a *Active) Forwarded() (uint64, bool) {
	if a.eng == nil {
		return 0, false
	}
	c := a.eng.Counters()
	return c.In + c.Out, true
}

// kernelOff installs packetio.KernelOff on the director's interfaces ifs.
func kernelOff(netns string, ifs ...string) (*packetio.KernelOff, error) {
	f, err := os.Open(NetnsPath(netns))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return packetio.NewKernelOff(int(f.Fd()), ifs...)
}

// DropCount returns how many packets the director kernel's netdev ingress
// drop has taken (userspace dataplanes only).
func (a *Active) DropCount() (uint64, error) {
	if a.off == nil {
		return 0, fmt.Errorf("fwdbench: %s does not keep the kernel off", a.Name)
	}
	return a.off.Dropped()
}
