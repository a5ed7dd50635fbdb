package dataplane

import (
	"net/netip"
	"time"
)

// Method is a destination's forwarding method (IP_VS_CONN_F_FWD_MASK).
type Method uint8

const (
	MethodMasq   Method = 0 // NAT (-m)
	MethodLocal  Method = 1 // local node
	MethodTunnel Method = 2 // IPIP/GUE/GRE tunnel (-i)
	MethodRoute  Method = 3 // direct routing (-g)
	MethodBypass Method = 4 // cache_bypass connections
)

// IP protocol numbers the director handles.
const (
	ProtoIP   uint8 = 0 // fwmark templates
	ProtoTCP  uint8 = 6
	ProtoUDP  uint8 = 17
	ProtoSCTP uint8 = 132
)

// ServiceKey identifies a virtual service: protocol, address and port, or a
// firewall mark (FWMark ≠ 0) with an address family.
type ServiceKey struct {
	Proto  uint8 // ProtoTCP, ProtoUDP or ProtoSCTP; 0 for fwmark services
	Addr   netip.Addr
	Port   uint16
	FWMark uint32
	IPv6   bool // family of a fwmark service; set from Addr otherwise
}

func (k ServiceKey) normal() ServiceKey {
	if k.FWMark != 0 {
		return ServiceKey{FWMark: k.FWMark, IPv6: k.IPv6}
	}
	k.Addr = k.Addr.Unmap()
	k.IPv6 = k.Addr.Is6()
	return k
}

// ServiceConfig is what ipvsadm -A/-E sets.
type ServiceConfig struct {
	Key       ServiceKey
	Scheduler string
	Flags     uint32        // scheduler.Flag*: persistent, one-packet, sched flags
	Timeout   time.Duration // persistence timeout
	// Netmask is the persistence granularity: for IPv4 a 32-bit mask
	// (0xFFFFFF00 is 255.255.255.0), for IPv6 a prefix length; 0 means the
	// default (0xFFFFFFFF, 128).
	Netmask uint32
	PE      string // persistence engine; none is implemented (ENOENT)
}

// DestConfig is what ipvsadm -a/-e sets.
type DestConfig struct {
	Addr       netip.Addr
	Port       uint16
	Method     Method
	Weight     int32
	UThreshold uint32
	LThreshold uint32
	TunType    uint8 // 0 ipip, 1 gue, 2 gre
	TunPort    uint16
	TunFlags   uint16
}

// Counters are the traffic counters kept per destination, per service and
// in total (spec §9.1).
type Counters struct {
	Conns, InPkts, OutPkts, InBytes, OutBytes uint64
}

func (a Counters) sub(b Counters) Counters {
	return Counters{a.Conns - b.Conns, a.InPkts - b.InPkts, a.OutPkts - b.OutPkts, a.InBytes - b.InBytes, a.OutBytes - b.OutBytes}
}

// Rates are the estimator's per-second rates (§9.2).
type Rates struct {
	CPS, InPPS, OutPPS, InBPS, OutBPS uint64
}

// Packet is what the director needs from a packet's headers. Replay
// synthesizes them; the packet dataplane parses them from the wire.
type Packet struct {
	Proto    uint8
	Src, Dst netip.Addr
	SrcPort  uint16
	DstPort  uint16
	TCPFlags uint8 // TCPSyn, TCPAck, TCPFin, TCPRst
	Chunk    uint8 // SCTP: type of the first chunk
	Len      int   // IP packet length (header and payload)
	Mark     uint32
}

// Action is what to do with a packet.
type Action uint8

const (
	// Accept: not IPVS traffic; the packet continues as if no director ran
	// (on a real director, to the local stack or on its route).
	Accept Action = iota
	// Forward: transmit to Verdict.Dest with Verdict.Method (inbound), or
	// send on to the client with source Verdict.Virtual (NAT reply).
	Forward
	// Drop silently.
	Drop
	// Reject: drop and answer ICMP port unreachable (ip_vs_leave).
	Reject
)

// Verdict is the director's decision for one packet.
type Verdict struct {
	Action Action
	Method Method
	// Dest is the real server of the connection.
	Dest netip.AddrPort
	// Virtual is the virtual address and port the client talks to.
	Virtual netip.AddrPort
	// Conn identifies the connection; 0 when there is none (one-packet
	// connections are gone when In returns).
	Conn ConnID
}

// ConnID names a connection entry while it lives.
type ConnID uint64

func connID(i, gen uint32) ConnID { return ConnID(uint64(gen)<<32 | uint64(i)) }
