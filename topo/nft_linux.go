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
// netdev "lvslab" has two sets and, per interface, an ingress chain that
// drops the IPv4 packets they match: set "services" (ipv4_addr . inet_proto
// . inet_service) holds the virtual services with a port, set "allports"
// (ipv4_addr . inet_proto) the port-0 ones. These are exactly the packets
// IPVS takes (§1.2); the rest of the traffic to a VIP reaches the director's
// own stack as on a real director (a ping gets its echo reply, a SYN to a
// port without a service a RST). Netdev ingress runs after the packet taps,
// so an AF_PACKET socket bound to ETH_P_ALL still sees every packet while
// the kernel never answers one the dataplane took (no RST for its SYN, no
// ICMP port unreachable). ARP is not touched: the director answers ARP for
// the VIP as in the classic setups. A dataplane keeps the sets in step with
// its services at run time with AddDropServices and DelDropServices.

// nftMu serialises the nftables batches that create sets (see dropInbound).
var nftMu sync.Mutex

const (
	DropTable    = "lvslab"
	DropServices = "services" // ipv4_addr . inet_proto . inet_service
	DropAllPorts = "allports" // ipv4_addr . inet_proto: port-0 services
)

// DropService is a virtual service whose packets the director's kernel must
// not handle: IPv4 packets to Addr of protocol Proto (unix.IPPROTO_TCP,
// IPPROTO_UDP, IPPROTO_SCTP) and destination port Port, or any port when
// Port is 0.
type DropService struct {
	Proto uint8
	Addr  netip.Addr
	Port  uint16
}

var (
	servicesType = nftables.MustConcatSetType(nftables.TypeIPAddr, nftables.TypeInetProto, nftables.TypeInetService)
	allPortsType = nftables.MustConcatSetType(nftables.TypeIPAddr, nftables.TypeInetProto)
)

// Registers of a concatenated key: 32-bit registers 8 (NFT_REG32_00, which
// is also the 128-bit register 1 a lookup reads from), 9 and 10.
const (
	regAddr  = 1
	regProto = 9
	regPort  = 10
)

// dropInbound installs the drop table, with empty sets, in the namespace
// nsfd, with chains on ifnames; when ipip is set it also drops IPIP packets
// (the userspace decapsulator took them at the tap).
func dropInbound(nsfd int, ifnames []string, ipip bool) error {
	// google/nftables numbers new sets from an unsynchronised package
	// counter, and Build configures nodes in parallel.
	nftMu.Lock()
	defer nftMu.Unlock()
	c, err := nftables.New(nftables.WithNetNSFd(nsfd))
	if err != nil {
		return err
	}
	t := c.AddTable(&nftables.Table{Family: nftables.TableFamilyNetdev, Name: DropTable})
	services := &nftables.Set{Table: t, Name: DropServices, KeyType: servicesType, Concatenation: true}
	allPorts := &nftables.Set{Table: t, Name: DropAllPorts, KeyType: allPortsType, Concatenation: true}
	for _, set := range []*nftables.Set{services, allPorts} {
		if err := c.AddSet(set, nil); err != nil {
			return err
		}
	}
	isIPv4 := []expr.Any{
		&expr.Meta{Key: expr.MetaKeyPROTOCOL, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.BigEndian.PutUint16(unix.ETH_P_IP)},
	}
	addrProto := append(append([]expr.Any{}, isIPv4...),
		&expr.Payload{DestRegister: regAddr, Base: expr.PayloadBaseNetworkHeader, Offset: 16, Len: 4},
		&expr.Payload{DestRegister: regProto, Base: expr.PayloadBaseNetworkHeader, Offset: 9, Len: 1},
	)
	for _, ifname := range ifnames {
		ch := c.AddChain(&nftables.Chain{
			Name: "in-" + ifname, Table: t, Device: ifname,
			Type: nftables.ChainTypeFilter, Hooknum: nftables.ChainHookIngress, Priority: nftables.ChainPriorityFilter,
		})
		c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: append(append([]expr.Any{}, addrProto...),
			&expr.Lookup{SourceRegister: regAddr, SetName: allPorts.Name, SetID: allPorts.ID},
			&expr.Verdict{Kind: expr.VerdictDrop},
		)})
		// The transport header load fails on a non-first fragment, which
		// then goes to the kernel like any unowned packet.
		c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: append(append([]expr.Any{}, addrProto...),
			&expr.Payload{DestRegister: regPort, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
			&expr.Lookup{SourceRegister: regAddr, SetName: services.Name, SetID: services.ID},
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

// AddDropServices adds svcs to the drop sets of the director namespace nsfd
// (negative: the caller's own namespace, as inside a dataplane agent).
func AddDropServices(nsfd int, svcs ...DropService) error {
	return editDropSets(nsfd, svcs, true)
}

// DelDropServices removes svcs from the drop sets.
func DelDropServices(nsfd int, svcs ...DropService) error {
	return editDropSets(nsfd, svcs, false)
}

func editDropSets(nsfd int, svcs []DropService, add bool) error {
	var services, allPorts []nftables.SetElement
	for _, s := range svcs {
		if !s.Addr.Is4() {
			return fmt.Errorf("drop service %s (protocol %d): the drop sets hold IPv4 services only", netip.AddrPortFrom(s.Addr, s.Port), s.Proto)
		}
		key := append(s.Addr.AsSlice(), s.Proto, 0, 0, 0)
		if s.Port == 0 {
			allPorts = append(allPorts, nftables.SetElement{Key: key})
		} else {
			services = append(services, nftables.SetElement{Key: append(key, byte(s.Port>>8), byte(s.Port), 0, 0)})
		}
	}
	var opts []nftables.ConnOption
	if nsfd >= 0 {
		opts = append(opts, nftables.WithNetNSFd(nsfd))
	}
	c, err := nftables.New(opts...)
	if err != nil {
		return err
	}
	t := &nftables.Table{Family: nftables.TableFamilyNetdev, Name: DropTable}
	for name, els := range map[string][]nftables.SetElement{DropServices: services, DropAllPorts: allPorts} {
		if len(els) == 0 {
			continue
		}
		set, err := c.GetSetByName(t, name)
		if err != nil {
			return fmt.Errorf("no service drop set here (not a director of a built lab?): %w", err)
		}
		if add {
			err = c.SetAddElements(set, els)
		} else {
			err = c.SetDeleteElements(set, els)
		}
		if err != nil {
			return err
		}
	}
	return c.Flush()
}
