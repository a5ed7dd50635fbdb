package topo

import (
	"fmt"
	"net"
	"strings"
	"sync"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Features says which kernel features this machine has. Each is detected by
// using it once in a scratch namespace, never assumed.
type Features struct {
	IPVS     bool   `json:"ipvs"`     // kernel IPVS (the ip_vs generic netlink family)
	IPIP     bool   `json:"ipip"`     // the ipip tunnel driver
	Netem    bool   `json:"netem"`    // the netem qdisc (delay, loss, reordering)
	TBF      bool   `json:"tbf"`      // the tbf qdisc (rate limits)
	XDP      bool   `json:"xdp"`      // XDP programs on veth
	NFTables bool   `json:"nftables"` // nftables, netdev family
	NFQueue  bool   `json:"nfqueue"`  // the NFQUEUE target in an nft rule (fwmark services)
	Kernel   string `json:"kernel"`
	// Errors keeps why each absent feature is absent.
	Errors map[string]string `json:"errors,omitempty"`
}

var (
	probeOnce sync.Once
	probed    Features
)

// Probe detects the kernel features once per process.
func Probe() Features {
	probeOnce.Do(func() { probed = probe() })
	return probed
}

// String is one line for run reports: "ipvs=absent ipip=absent …".
func (f Features) String() string {
	word := func(b bool) string {
		if b {
			return "present"
		}
		return "absent"
	}
	return fmt.Sprintf("ipvs=%s ipip=%s netem=%s tbf=%s xdp=%s nftables=%s nfqueue=%s kernel=%s",
		word(f.IPVS), word(f.IPIP), word(f.Netem), word(f.TBF), word(f.XDP), word(f.NFTables), word(f.NFQueue), f.Kernel)
}

// DelayMechanism names what delays a link for a delay or jitter fault:
// "netem" (a qdisc on both ends of each of the node's veth pairs) or
// "userspace" (topo/impair's relay, spliced into the fabric).
func (f Features) DelayMechanism() string {
	if f.Netem {
		return "netem"
	}
	return "userspace"
}

// Decap names how TUN real servers decapsulate: "kernel" or "userspace".
func (f Features) Decap() string {
	if f.IPIP {
		return "kernel"
	}
	return "userspace"
}

func probe() Features {
	f := Features{Errors: map[string]string{}}
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		f.Kernel = unix.ByteSliceToString(u.Release[:])
	}
	miss := func(name string, err error) bool {
		if err != nil {
			f.Errors[name] = err.Error()
			return false
		}
		return true
	}
	_, err := netlink.GenlFamilyGet("IPVS")
	f.IPVS = miss("ipvs", err)
	err = onLockedThread(func() error {
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			return err
		}
		attrs := netlink.NewLinkAttrs()
		attrs.Name = "probe0"
		attrs.Flags = net.FlagUp
		if err := netlink.LinkAdd(&netlink.Veth{LinkAttrs: attrs, PeerName: "probe1"}); err != nil {
			return err
		}
		veth, err := netlink.LinkByName("probe0")
		if err != nil {
			return err
		}
		root := netlink.QdiscAttrs{LinkIndex: veth.Attrs().Index, Parent: netlink.HANDLE_ROOT, Handle: netlink.MakeHandle(1, 0)}
		f.Netem = miss("netem", netlink.QdiscAdd(netlink.NewNetem(root, netlink.NetemQdiscAttrs{Latency: 1000})))
		peer, err := netlink.LinkByName("probe1")
		if err != nil {
			return err
		}
		root.LinkIndex = peer.Attrs().Index
		f.TBF = miss("tbf", netlink.QdiscAdd(&netlink.Tbf{QdiscAttrs: root, Rate: 1 << 20, Limit: 1 << 16, Buffer: 1 << 14}))
		f.XDP = miss("xdp", probeXDP(veth))
		tattrs := netlink.NewLinkAttrs()
		tattrs.Name = "probeipip"
		f.IPIP = miss("ipip", netlink.LinkAdd(&netlink.Iptun{LinkAttrs: tattrs}))
		f.NFTables = miss("nftables", probeNFT())
		f.NFQueue = miss("nfqueue", probeNFQueue())
		return nil
	})
	if err != nil {
		for _, k := range []string{"ipip", "netem", "tbf", "xdp", "nftables", "nfqueue"} {
			f.Errors[k] = "scratch namespace: " + err.Error()
		}
	}
	return f
}

func probeXDP(link netlink.Link) error {
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Type:    ebpf.XDP,
		License: "GPL",
		Instructions: asm.Instructions{
			asm.Mov.Imm(asm.R0, 2), // XDP_PASS
			asm.Return(),
		},
	})
	if err != nil {
		return err
	}
	defer prog.Close()
	return netlink.LinkSetXdpFdWithFlags(link, prog.FD(), 0)
}

func probeNFT() error {
	c, err := nftables.New()
	if err != nil {
		return err
	}
	c.AddTable(&nftables.Table{Family: nftables.TableFamilyNetdev, Name: "probe"})
	return c.Flush()
}

// probeNFQueue adds a rule that queues to NFQUEUE 0 (nothing is sent to
// it: the scratch namespace has no traffic).
func probeNFQueue() error {
	c, err := nftables.New()
	if err != nil {
		return err
	}
	t := c.AddTable(&nftables.Table{Family: nftables.TableFamilyINet, Name: "probeq"})
	prio := nftables.ChainPriority(0)
	ch := c.AddChain(&nftables.Chain{Name: "input", Table: t, Type: nftables.ChainTypeFilter, Hooknum: nftables.ChainHookInput, Priority: &prio})
	c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: []expr.Any{NFQueueTarget(0)}})
	return c.Flush()
}

// Describe is a multi-line account of the features and the fallback each
// absence selects.
func (f Features) Describe() string {
	var b strings.Builder
	line := func(name string, ok bool, present, absent string) {
		state, what := "present", present
		if !ok {
			state, what = "absent ", absent
		}
		fmt.Fprintf(&b, "%-9s %s  %s", name, state, what)
		if e, has := f.Errors[strings.TrimSpace(name)]; has && !ok {
			fmt.Fprintf(&b, " (%s)", e)
		}
		b.WriteByte('\n')
	}
	fmt.Fprintf(&b, "kernel    %s\n", f.Kernel)
	line("ipvs", f.IPVS, "kernel IPVS exists; lvslab still runs its own director", "lvslab's userspace director")
	line("ipip", f.IPIP, "TUN real servers decapsulate with the kernel's tunl0", "TUN real servers run lvslab's userspace decapsulator (AF_PACKET in, TUN out)")
	line("netem", f.Netem, "delay and jitter faults use netem", "delay and jitter faults use lvslab's userspace delay line (a relay in the lab's fabric)")
	line("tbf", f.TBF, "rate faults use tbf", "rate faults are unavailable")
	line("xdp", f.XDP, "the dataplane may steal packets with XDP", "the dataplane uses AF_PACKET")
	line("nftables", f.NFTables, "directors drop VIP traffic in netdev ingress after the taps", "directors cannot keep their kernel off VIP traffic")
	line("nfqueue", f.NFQueue, "fwmark services read marked packets through the netfilter queue", "fwmark services cannot see marks (no NFQUEUE target)")
	return b.String()
}
