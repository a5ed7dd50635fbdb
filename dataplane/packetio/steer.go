package packetio

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"golang.org/x/sys/unix"
)

// Steering is the eBPF program of a PACKET_FANOUT_EBPF group that sends
// both directions of a connection to one worker when the interface does
// not say which end of the connection it faces: it hashes the client's
// address and port, which is the source of a packet to a virtual address
// and the destination of anything else (a NAT reply, from the real server
// to the client). The virtual addresses live in BPF maps the director
// keeps equal to its services (SetVIPs).
//
// Like Fanout's classic program it sends fragments of a datagram together
// (a fragment hashes the address alone, port 0) and other frames (ARP, ICMP
// without ports) by address or to worker 0. IPv6 ports are read right after
// the fixed header.
type Steering struct {
	prog       *ebpf.Program
	vip4, vip6 *ebpf.Map
}

// maxVIPs bounds each family's map of virtual addresses.
const maxVIPs = 65536

// __sk_buff field offsets (linux/bpf.h).
const skbProtocol = 16

// NewSteering loads the program with empty maps.
func NewSteering() (*Steering, error) {
	s := &Steering{}
	var err error
	newMap := func(name string, keySize uint32) (*ebpf.Map, error) {
		return ebpf.NewMap(&ebpf.MapSpec{Name: name, Type: ebpf.Hash, KeySize: keySize, ValueSize: 1,
			MaxEntries: maxVIPs, Flags: unix.BPF_F_NO_PREALLOC})
	}
	if s.vip4, err = newMap("lvs_vip4", 4); err != nil {
		return nil, fmt.Errorf("packetio: steering map: %w", err)
	}
	if s.vip6, err = newMap("lvs_vip6", 16); err != nil {
		s.Close()
		return nil, fmt.Errorf("packetio: steering map: %w", err)
	}
	s.prog, err = ebpf.NewProgram(&ebpf.ProgramSpec{Name: "lvs_steer", Type: ebpf.SocketFilter, License: "Dual MIT/GPL",
		Instructions: steeringProgram(s.vip4.FD(), s.vip6.FD())})
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("packetio: steering program: %w", err)
	}
	return s, nil
}

// SetVIPs adds and removes virtual addresses.
func (s *Steering) SetVIPs(added, removed []netip.Addr) error {
	var errs []error
	for _, a := range removed {
		m, k := s.key(a)
		if err := m.Delete(k); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			errs = append(errs, fmt.Errorf("packetio: steering: remove %v: %w", a, err))
		}
	}
	for _, a := range added {
		m, k := s.key(a)
		if err := m.Put(k, uint8(1)); err != nil {
			errs = append(errs, fmt.Errorf("packetio: steering: add %v: %w", a, err))
		}
	}
	return errors.Join(errs...)
}

// key returns a's map and key: an IPv4 address as the number LD_ABS loads
// (host order), an IPv6 address as the packet carries it.
func (s *Steering) key(a netip.Addr) (*ebpf.Map, any) {
	a = a.Unmap()
	if a.Is4() {
		b := a.As4()
		return s.vip4, binary.BigEndian.Uint32(b[:])
	}
	return s.vip6, a.As16()
}

// Close releases the program and its maps (a fanout group keeps its own
// reference to the program).
func (s *Steering) Close() error {
	var errs []error
	if s.prog != nil {
		errs = append(errs, s.prog.Close())
	}
	for _, m := range []*ebpf.Map{s.vip4, s.vip6} {
		if m != nil {
			errs = append(errs, m.Close())
		}
	}
	return errors.Join(errs...)
}

// Program returns the loaded program, for tests that run it.
func (s *Steering) Program() *ebpf.Program { return s.prog }

// steeringProgram returns the program over the maps with descriptors vip4
// and vip6. On ingress the fanout demux runs before the link header is
// pushed back, so offsets start at the IP header (as in Fanout.program);
// LD_ABS and LD_IND read from there, in host byte order, and return 0 for
// the program when they run past the end of the packet.
//
// Registers: R6 the skb (LD_ABS's implicit operand), R7 the IPv4 header
// length, R8 the ports word (source port high, destination port low) or 0,
// R9 the source address word.
func steeringProgram(vip4, vip6 int) asm.Instructions {
	const (
		keyOff = -16 // the map key on the stack
		golden = -1640531535
	)
	hasPorts := func(protoReg asm.Register, noPorts string) asm.Instructions {
		return asm.Instructions{
			asm.JEq.Imm(protoReg, unix.IPPROTO_TCP, noPorts+"_ports"),
			asm.JEq.Imm(protoReg, unix.IPPROTO_UDP, noPorts+"_ports"),
			asm.JEq.Imm(protoReg, unix.IPPROTO_SCTP, noPorts+"_ports"),
			asm.Ja.Label(noPorts),
		}
	}
	var in asm.Instructions
	in = append(in,
		asm.Mov.Reg(asm.R6, asm.R1),
		asm.Mov.Imm(asm.R8, 0),
		asm.LoadMem(asm.R2, asm.R1, skbProtocol, asm.Word),
		asm.JEq.Imm(asm.R2, int32(htons(unix.ETH_P_IP)), "ip4"),
		asm.JEq.Imm(asm.R2, int32(htons(unix.ETH_P_IPV6)), "ip6"),
		asm.Mov.Imm(asm.R0, 0),
		asm.Return(),

		// IPv4: a fragment hashes on its addresses only.
		asm.LoadAbs(0, asm.Byte).WithSymbol("ip4"),
		asm.And.Imm(asm.R0, 0x0f),
		asm.LSh.Imm(asm.R0, 2),
		asm.Mov.Reg(asm.R7, asm.R0),
		asm.LoadAbs(6, asm.Half),
		asm.And.Imm(asm.R0, 0x3fff),
		asm.JNE.Imm(asm.R0, 0, "ip4_addrs"),
		asm.LoadAbs(9, asm.Byte),
	)
	in = append(in, hasPorts(asm.R0, "ip4_addrs")...)
	in = append(in,
		asm.LoadInd(asm.R0, asm.R7, 0, asm.Word).WithSymbol("ip4_addrs_ports"),
		asm.Mov.Reg(asm.R8, asm.R0),
		asm.LoadAbs(ipSrcOff, asm.Word).WithSymbol("ip4_addrs"),
		asm.Mov.Reg(asm.R9, asm.R0),
		asm.LoadAbs(ipDstOff, asm.Word),
		asm.StoreMem(asm.RFP, keyOff, asm.R0, asm.Word),
		asm.LoadMapPtr(asm.R1, vip4),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, keyOff),
		asm.FnMapLookupElem.Call(),
		asm.JNE.Imm(asm.R0, 0, "to_vip"),
		// A reply: the client is the destination.
		asm.LoadMem(asm.R9, asm.RFP, keyOff, asm.Word),
		asm.Ja.Label("reply"),

		// IPv6: the whole destination is the key; the last words of the
		// addresses are hashed.
		asm.LoadAbs(6, asm.Byte).WithSymbol("ip6"),
	)
	in = append(in, hasPorts(asm.R0, "ip6_addrs")...)
	in = append(in,
		asm.LoadAbs(40, asm.Word).WithSymbol("ip6_addrs_ports"),
		asm.Mov.Reg(asm.R8, asm.R0),
		asm.Mov.Reg(asm.R1, asm.R6).WithSymbol("ip6_addrs"),
		asm.Mov.Imm(asm.R2, ipDstOff6),
		asm.Mov.Reg(asm.R3, asm.RFP),
		asm.Add.Imm(asm.R3, keyOff),
		asm.Mov.Imm(asm.R4, 16),
		asm.FnSkbLoadBytes.Call(),
		asm.JNE.Imm(asm.R0, 0, "none"),
		asm.LoadAbs(ip6SrcLastWord, asm.Word),
		asm.Mov.Reg(asm.R9, asm.R0),
		asm.LoadMapPtr(asm.R1, vip6),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, keyOff),
		asm.FnMapLookupElem.Call(),
		asm.JNE.Imm(asm.R0, 0, "to_vip"),
		asm.LoadAbs(ip6DstLastWord, asm.Word),
		asm.Mov.Reg(asm.R9, asm.R0),

		// The client's port: the destination port of a reply…
		asm.Mov.Reg(asm.R0, asm.R8).WithSymbol("reply"),
		asm.And.Imm(asm.R0, 0xffff),
		asm.Ja.Label("hash"),
		// …the source port of a packet to a virtual address.
		asm.Mov.Reg(asm.R0, asm.R8).WithSymbol("to_vip"),
		asm.RSh.Imm(asm.R0, 16),
		// ((address + port) × 2654435761) >> 16, in 32 bits as Fanout's.
		asm.Add.Reg32(asm.R0, asm.R9).WithSymbol("hash"),
		asm.Mul.Imm32(asm.R0, golden),
		asm.RSh.Imm32(asm.R0, 16),
		asm.Return(),
		asm.Mov.Imm(asm.R0, 0).WithSymbol("none"),
		asm.Return(),
	)
	return in
}

// ipDstOff6 is where an IPv6 header's destination address starts.
const ipDstOff6 = 24

// joinSteering joins fd to fanout group id with program s.
func joinSteering(fd int, id uint16, s *Steering) error {
	arg := int(id) | (unix.PACKET_FANOUT_EBPF|unix.PACKET_FANOUT_FLAG_IGNORE_OUTGOING)<<16
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_FANOUT, arg); err != nil {
		return fmt.Errorf("packetio: PACKET_FANOUT group %d: %w", id, err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_FANOUT_DATA, s.prog.FD()); err != nil {
		return fmt.Errorf("packetio: PACKET_FANOUT_DATA: %w", err)
	}
	return nil
}
