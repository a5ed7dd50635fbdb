package topo

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"
	"sync"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/xt"
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
//
// IP fragments carry no ports after the first, so a third set, "fragments"
// (ipv4_addr . inet_proto), holds the address and protocol of every
// service: fragments of such packets are dropped whatever their offset, as
// the dataplane reassembles them itself (the kernel would otherwise queue
// the later fragments for reassembly and time them out). Fragmented
// datagrams to a port of that address and protocol without a service are
// the dataplane's too (it drops them; the kernel would answer).

// nftMu serialises the nftables batches that create sets (see dropInbound).
var nftMu sync.Mutex

const (
	DropTable    = "lvslab"
	DropServices = "services"  // ipv4_addr . inet_proto . inet_service
	DropAllPorts = "allports"  // ipv4_addr . inet_proto: port-0 services
	DropFrags    = "fragments" // ipv4_addr . inet_proto: every service's, for IP fragments
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
	frags := &nftables.Set{Table: t, Name: DropFrags, KeyType: allPortsType, Concatenation: true}
	for _, set := range []*nftables.Set{services, allPorts, frags} {
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
		// MF set or a fragment offset: any fragment.
		c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: slices.Concat(addrProto, []expr.Any{
			&expr.Payload{DestRegister: regPort, Base: expr.PayloadBaseNetworkHeader, Offset: 6, Len: 2},
			&expr.Bitwise{SourceRegister: regPort, DestRegister: regPort, Len: 2, Mask: []byte{0x3f, 0xff}, Xor: []byte{0, 0}},
			&expr.Cmp{Op: expr.CmpOpNeq, Register: regPort, Data: []byte{0, 0}},
			&expr.Lookup{SourceRegister: regAddr, SetName: frags.Name, SetID: frags.ID},
			&expr.Verdict{Kind: expr.VerdictDrop},
		})})
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
	var services, allPorts, frags []nftables.SetElement
	for _, s := range svcs {
		if !s.Addr.Is4() {
			return fmt.Errorf("drop service %s (protocol %d): the drop sets hold IPv4 services only", netip.AddrPortFrom(s.Addr, s.Port), s.Proto)
		}
		key := addrProtoKey(s.Addr, s.Proto)
		frags = append(frags, nftables.SetElement{Key: key})
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
	sets := map[string]*nftables.Set{}
	for _, name := range []string{DropServices, DropAllPorts, DropFrags} {
		if sets[name], err = c.GetSetByName(t, name); err != nil {
			return fmt.Errorf("no service drop set here (not a director of a built lab?): %w", err)
		}
	}
	for name, els := range map[string][]nftables.SetElement{DropServices: services, DropAllPorts: allPorts} {
		if len(els) == 0 {
			continue
		}
		if add {
			err = c.SetAddElements(sets[name], els)
		} else {
			err = c.SetDeleteElements(sets[name], els)
		}
		if err != nil {
			return err
		}
	}
	if add {
		if err := c.SetAddElements(sets[DropFrags], frags); err != nil {
			return err
		}
		return c.Flush()
	}
	if err := c.Flush(); err != nil {
		return err
	}
	// An address and protocol leaves the fragments set with its last
	// service.
	frags, err = unusedAddrProtos(c, sets, frags)
	if err != nil || len(frags) == 0 {
		return err
	}
	if err := c.SetDeleteElements(sets[DropFrags], frags); err != nil {
		return err
	}
	return c.Flush()
}

// addrProtoKey is the key of an address and protocol in a concatenated set
// (each part in a 4-byte register).
func addrProtoKey(a netip.Addr, proto uint8) []byte {
	return append(a.AsSlice(), proto, 0, 0, 0)
}

// unusedAddrProtos returns those of the fragments set's elements els that
// no service of the services and allports sets has any more.
func unusedAddrProtos(c *nftables.Conn, sets map[string]*nftables.Set, els []nftables.SetElement) ([]nftables.SetElement, error) {
	used := map[string]bool{}
	for _, name := range []string{DropServices, DropAllPorts} {
		have, err := c.GetSetElements(sets[name])
		if err != nil {
			return nil, err
		}
		for _, h := range have {
			if len(h.Key) >= 8 {
				used[string(h.Key[:8])] = true
			}
		}
	}
	var unused []nftables.SetElement
	for _, e := range els {
		if !used[string(e.Key)] {
			used[string(e.Key)] = true // once
			unused = append(unused, e)
		}
	}
	return unused, nil
}

// NFQueueTarget is the xtables NFQUEUE target (revision 3, with bypass) for
// queue num, through nft's compat expression: nft's own queue statement
// needs CONFIG_NFT_QUEUE, which kernels without it (this project's CI
// among them) lack, while the compat target works on both. Info is struct
// xt_NFQ_info_v3 (linux/netfilter/xt_NFQUEUE.h) in host byte order, padded
// to XT_ALIGN: queuenum, queues_total, flags.
func NFQueueTarget(num uint16) *expr.Target {
	const bypass = 0x01 // NFQ_FLAG_BYPASS
	info := make(xt.Unknown, 8)
	binary.NativeEndian.PutUint16(info[0:], num)
	binary.NativeEndian.PutUint16(info[2:], 1)
	binary.NativeEndian.PutUint16(info[4:], bypass)
	return &expr.Target{Name: "NFQUEUE", Rev: 3, Info: &info}
}
