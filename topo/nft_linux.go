package topo

import (
	"fmt"
	"net/netip"
	"sync"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// The kernel-side drop a userspace dataplane relies on. In a director, table
// netdev "lvslab" has set "vips" (ipv4_addr) and, per interface, an ingress
// chain that drops IPv4 packets whose destination is in the set. Netdev
// ingress runs after the packet taps, so an AF_PACKET socket bound to
// ETH_P_ALL still sees every packet while the kernel never answers one itself
// (no RST for a SYN the dataplane took, no ICMP port unreachable). ARP is not
// touched: the director answers ARP for the VIP as in the classic setups.
// A dataplane adds or removes VIPs at run time with AddDropVIPs.
// nftMu serialises the nftables batches that create sets (see dropInbound).
var nftMu sync.Mutex

const (
	DropTable = "lvslab"
	DropSet   = "vips"
)

// dropInbound installs the drop table in the namespace nsfd, with chains on
// ifnames: drop IPv4 to vips and, when ipip is set, drop IPIP packets (the
// userspace decapsulator took them at the tap).
func dropInbound(nsfd int, ifnames []string, vips []netip.Addr, ipip bool) error {
	// google/nftables numbers new sets from an unsynchronised package
	// counter, and Build configures nodes in parallel.
	nftMu.Lock()
	defer nftMu.Unlock()
	c, err := nftables.New(nftables.WithNetNSFd(nsfd))
	if err != nil {
		return err
	}
	t := c.AddTable(&nftables.Table{Family: nftables.TableFamilyNetdev, Name: DropTable})
	set := &nftables.Set{Table: t, Name: DropSet, KeyType: nftables.TypeIPAddr}
	if err := c.AddSet(set, setElements(vips)); err != nil {
		return err
	}
	isIPv4 := []expr.Any{
		&expr.Meta{Key: expr.MetaKeyPROTOCOL, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.BigEndian.PutUint16(unix.ETH_P_IP)},
	}
	for _, ifname := range ifnames {
		ch := c.AddChain(&nftables.Chain{
			Name: "in-" + ifname, Table: t, Device: ifname,
			Type: nftables.ChainTypeFilter, Hooknum: nftables.ChainHookIngress, Priority: nftables.ChainPriorityFilter,
		})
		c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: append(append([]expr.Any{}, isIPv4...),
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 16, Len: 4},
			&expr.Lookup{SourceRegister: 1, SetName: set.Name, SetID: set.ID},
			&expr.Verdict{Kind: expr.VerdictDrop},
		)})
		if ipip {
			c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: append(append([]expr.Any{}, isIPv4...),
				&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 9, Len: 1},
				&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.IPPROTO_IPIP}},
				&expr.Verdict{Kind: expr.VerdictDrop},
			)})
		}
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("nftables: %w", err)
	}
	return nil
}

// AddDropVIPs adds vips to the drop set of the director namespace nsfd
// (negative: the caller's own namespace, as inside a dataplane agent).
func AddDropVIPs(nsfd int, vips ...netip.Addr) error {
	return editDropSet(nsfd, vips, true)
}

// DelDropVIPs removes vips from the drop set.
func DelDropVIPs(nsfd int, vips ...netip.Addr) error {
	return editDropSet(nsfd, vips, false)
}

func editDropSet(nsfd int, vips []netip.Addr, add bool) error {
	var opts []nftables.ConnOption
	if nsfd >= 0 {
		opts = append(opts, nftables.WithNetNSFd(nsfd))
	}
	c, err := nftables.New(opts...)
	if err != nil {
		return err
	}
	t := &nftables.Table{Family: nftables.TableFamilyNetdev, Name: DropTable}
	set, err := c.GetSetByName(t, DropSet)
	if err != nil {
		return fmt.Errorf("no VIP drop set here (not a director of a built lab?): %w", err)
	}
	if add {
		err = c.SetAddElements(set, setElements(vips))
	} else {
		err = c.SetDeleteElements(set, setElements(vips))
	}
	if err != nil {
		return err
	}
	return c.Flush()
}

func setElements(vips []netip.Addr) []nftables.SetElement {
	els := make([]nftables.SetElement, 0, len(vips))
	for _, v := range vips {
		els = append(els, nftables.SetElement{Key: v.AsSlice()})
	}
	return els
}
