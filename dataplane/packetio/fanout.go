package packetio

import (
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Side says which end of a flow faces an interface, for the fanout hash.
type Side uint8

const (
	// ClientSide: the interface clients send on; the client is the
	// packet's source.
	ClientSide Side = iota
	// ServerSide: the interface real servers reply on; the client is the
	// packet's destination.
	ServerSide
)

// Fanout is a PACKET_FANOUT group. With several workers, each opens one
// socket per interface in the interface's group. The kernel's own
// PACKET_FANOUT_HASH is symmetric over the 5-tuple, which a NAT rewrite
// breaks (the reply carries the RIP, not the VIP), so the group runs a
// classic BPF program instead that hashes the client's address and port —
// the source on the client side, the destination on the server side — and
// both directions of a connection meet in the same worker.
//
// When one interface faces both ends (or the caller does not know which),
// Steering replaces Side: its eBPF program tells the ends apart by the
// virtual addresses (Classifier).
type Fanout struct {
	ID       uint16 // group id, unique in the network namespace
	Side     Side
	Steering *Classifier // if set, the group runs its steering program instead of the Side program
	Workers  int
}

// Classic BPF opcodes (linux/filter.h) the program uses.
const (
	bpfLdH  = unix.BPF_LD | unix.BPF_H | unix.BPF_ABS
	bpfLdW  = unix.BPF_LD | unix.BPF_W | unix.BPF_ABS
	bpfLdxB = unix.BPF_LDX | unix.BPF_B | unix.BPF_MSH
	bpfLdHX = unix.BPF_LD | unix.BPF_H | unix.BPF_IND
	bpfJeq  = unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K
	bpfSt   = unix.BPF_ST
	bpfLdxM = unix.BPF_LDX | unix.BPF_W | unix.BPF_MEM
	bpfAddX = unix.BPF_ALU | unix.BPF_ADD | unix.BPF_X
	bpfMulK = unix.BPF_ALU | unix.BPF_MUL | unix.BPF_K
	bpfRshK = unix.BPF_ALU | unix.BPF_RSH | unix.BPF_K
	bpfRetA = unix.BPF_RET | unix.BPF_A
	bpfRetK = unix.BPF_RET | unix.BPF_K
	bpfJa   = unix.BPF_JMP | unix.BPF_JA
	ethIPv4 = 0x0800
	ethIPv6 = 0x86dd
	// last words of the IPv6 addresses
	ip6SrcLastWord = 8 + 12
	ip6DstLastWord = 24 + 12
	ipSrcOff       = 12
	// Ancillary loads (linux/filter.h); x/sys does not carry them.
	skfAdOff      = 0xfffff000 // SKF_AD_OFF, -0x1000
	skfAdProtocol = 0
	ipDstOff      = 16
)

// program returns the client-endpoint hash for f.Side:
// ((address + port) × 2654435761) >> 16, over the IPv4 address or the last
// word of the IPv6 address; other frames go to worker 0. The kernel takes
// the result modulo the group size. IPv6 ports are read right after the
// fixed header: a packet with extension headers hashes on other bytes.
//
// The fanout demux runs before the packet socket pushes the link header
// back, so on ingress the program's offsets start at the IP header and the
// EtherType comes from the skb (SKF_AD_PROTOCOL). Outgoing frames, which
// would start at the link header, never reach the group
// (PACKET_FANOUT_FLAG_IGNORE_OUTGOING).
func (f *Fanout) program() []unix.SockFilter {
	addr4, addr6, port := uint32(ipSrcOff), uint32(ip6SrcLastWord), uint32(0)
	if f.Side == ServerSide {
		addr4, addr6, port = ipDstOff, ip6DstLastWord, 2
	}
	return []unix.SockFilter{
		{Code: bpfLdW, K: skfAdOff + skfAdProtocol}, // 0: A = ntohs(skb->protocol)
		{Code: bpfJeq, K: ethIPv4, Jt: 0, Jf: 5},    // 1: IPv4, else 7
		{Code: bpfLdxB, K: 0},                       // 2: X = IHL × 4
		{Code: bpfLdHX, K: port},                    // 3: A = port
		{Code: bpfSt, K: 0},                         // 4: M[0] = port
		{Code: bpfLdW, K: addr4},                    // 5: A = address
		{Code: bpfJa, K: 4},                         // 6: to 11
		{Code: bpfJeq, K: ethIPv6, Jt: 0, Jf: 8},    // 7: IPv6, else 16
		{Code: bpfLdH, K: 40 + port},                // 8: A = port after the fixed header
		{Code: bpfSt, K: 0},                         // 9: M[0] = port
		{Code: bpfLdW, K: addr6},                    // 10: A = last address word
		{Code: bpfLdxM, K: 0},                       // 11: X = port
		{Code: bpfAddX},                             // 12: A += X
		{Code: bpfMulK, K: 2654435761},              // 13: Fibonacci hashing
		{Code: bpfRshK, K: 16},                      // 14
		{Code: bpfRetA},                             // 15
		{Code: bpfRetK, K: 0},                       // 16
	}
}

func (f *Fanout) join(fd int) error {
	if f.Steering != nil {
		return joinSteering(fd, f.ID, f.Steering)
	}
	// A fanout group replaces the socket's own hook, so PACKET_IGNORE_OUTGOING
	// must be repeated as the group's flag.
	arg := int(f.ID) | (unix.PACKET_FANOUT_CBPF|unix.PACKET_FANOUT_FLAG_IGNORE_OUTGOING)<<16
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_FANOUT, arg); err != nil {
		return fmt.Errorf("packetio: PACKET_FANOUT group %d: %w", f.ID, err)
	}
	prog := f.program()
	fp := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	_, _, e := unix.Syscall6(unix.SYS_SETSOCKOPT, uintptr(fd), unix.SOL_PACKET, unix.PACKET_FANOUT_DATA,
		uintptr(unsafe.Pointer(&fp)), unsafe.Sizeof(fp), 0)
	if e != 0 {
		return fmt.Errorf("packetio: PACKET_FANOUT_DATA: %w", e)
	}
	return nil
}
