package packetio

import (
	"errors"
	"fmt"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// KernelOff keeps a namespace's own IP stack off the packets the director
// reads from its interfaces: an nftables netdev table with an ingress chain
// per interface that drops IPv4 and IPv6. The netdev ingress hook runs
// after the packet taps, so AF_PACKET sockets have their copy by then; the
// kernel neither forwards nor answers (no RST for a SYN to the VIP), while
// ARP still reaches it (the director's addresses keep being resolvable).
// It works in the namespace of netnsFd (-1: the caller's).
type KernelOff struct {
	conn  *nftables.Conn
	table *nftables.Table
}

// KernelOffTable is the name of the netdev table KernelOff installs.
const KernelOffTable = "lvsdrop"

// NewKernelOff installs the drop chains on ifnames.
func NewKernelOff(netnsFd int, ifnames ...string) (*KernelOff, error) {
	// A lasting connection keeps one netlink socket, opened in the target
	// namespace now: netnsFd need not outlive this call.
	opts := []nftables.ConnOption{nftables.AsLasting()}
	if netnsFd >= 0 {
		opts = append(opts, nftables.WithNetNSFd(netnsFd))
	}
	c, err := nftables.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("packetio: nftables: %w", err)
	}
	k := &KernelOff{conn: c, table: &nftables.Table{Name: KernelOffTable, Family: nftables.TableFamilyNetdev}}
	c.AddTable(k.table)
	prio := nftables.ChainPriorityFilter
	for _, dev := range ifnames {
		ch := c.AddChain(&nftables.Chain{Name: dev, Table: k.table, Type: nftables.ChainTypeFilter,
			Hooknum: nftables.ChainHookIngress, Priority: prio, Device: dev})
		for _, proto := range []uint16{unix.ETH_P_IP, unix.ETH_P_IPV6} {
			c.AddRule(&nftables.Rule{Table: k.table, Chain: ch, Exprs: []expr.Any{
				&expr.Meta{Key: expr.MetaKeyPROTOCOL, Register: 1},
				&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.BigEndian.PutUint16(proto)},
				&expr.Counter{},
				&expr.Verdict{Kind: expr.VerdictDrop},
			}})
		}
	}
	if err := c.Flush(); err != nil {
		c.CloseLasting()
		return nil, fmt.Errorf("packetio: install netdev drop on %v: %w", ifnames, err)
	}
	return k, nil
}

// Dropped returns how many packets the chains dropped so far.
func (k *KernelOff) Dropped() (uint64, error) {
	chains, err := k.conn.ListChainsOfTableFamily(nftables.TableFamilyNetdev)
	if err != nil {
		return 0, fmt.Errorf("packetio: list chains: %w", err)
	}
	var n uint64
	for _, ch := range chains {
		if ch.Table.Name != KernelOffTable {
			continue
		}
		rules, err := k.conn.GetRules(k.table, ch)
		if err != nil {
			return 0, fmt.Errorf("packetio: list rules: %w", err)
		}
		for _, r := range rules {
			for _, e := range r.Exprs {
				if c, ok := e.(*expr.Counter); ok {
					n += c.Packets
				}
			}
		}
	}
	return n, nil
}

// Close removes the table: the kernel sees the packets again.
func (k *KernelOff) Close() error {
	k.conn.DelTable(k.table)
	return errors.Join(k.conn.Flush(), k.conn.CloseLasting())
}
