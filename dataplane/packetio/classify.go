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

// Classifier holds a director's BPF maps — its virtual addresses, which
// the director keeps equal to its services (SetVIPs), and the addresses of
// its masquerading real servers (AddNATSources) — and two eBPF programs
// that read them.
//
// Steer is the program of a PACKET_FANOUT_EBPF group that sends both
// directions of a connection to one worker when an interface does not say
// which end of the connection it faces: it hashes the client's address and
// port, which is the source of a packet to a virtual address and the
// destination of anything else (a NAT reply, from the real server to the
// client). Like Fanout's classic program it sends the fragments of a
// datagram together (a fragment hashes the address alone, port 0) and
// frames that are not IP to worker 0. IPv6 ports are read right after the
// fixed header.
//
// Filter is a socket filter that passes only what a director forwards:
// packets to a virtual address, packets from a NAT real server (replies,
// and their fragments), and IP packets of other protocols (ICMP errors
// that may belong to a connection); frames that are not IP pass too, for
// the director to ignore as before. Everything else — above all the
// replies of DR and TUN real servers that the director's kernel routes
// back to clients — is dropped before the kernel copies it to the socket.
type Classifier struct {
	steer, filter          *ebpf.Program
	vip4, vip6, nat4, nat6 *ebpf.Map
}

// maxAddrs bounds each of the maps.
const maxAddrs = 65536

// __sk_buff field offsets (linux/bpf.h).
const skbProtocol = 16

// NewClassifier loads the programs with empty maps.
func NewClassifier() (*Classifier, error) {
	c := &Classifier{}
	newMap := func(name string, keySize uint32) (*ebpf.Map, error) {
		return ebpf.NewMap(&ebpf.MapSpec{Name: name, Type: ebpf.Hash, KeySize: keySize, ValueSize: 1,
			MaxEntries: maxAddrs, Flags: unix.BPF_F_NO_PREALLOC})
	}
	for _, m := range []struct {
		p       **ebpf.Map
		name    string
		keySize uint32
	}{{&c.vip4, "lvs_vip4", 4}, {&c.vip6, "lvs_vip6", 16}, {&c.nat4, "lvs_nat4", 4}, {&c.nat6, "lvs_nat6", 16}} {
		var err error
		if *m.p, err = newMap(m.name, m.keySize); err != nil {
			c.Close()
			return nil, fmt.Errorf("packetio: classifier map: %w", err)
		}
	}
	var err error
	load := func(name string, in asm.Instructions) (*ebpf.Program, error) {
		return ebpf.NewProgram(&ebpf.ProgramSpec{Name: name, Type: ebpf.SocketFilter, License: "Dual MIT/GPL", Instructions: in})
	}
	if c.steer, err = load("lvs_steer", steerProgram(c.vip4.FD(), c.vip6.FD())); err != nil {
		c.Close()
		return nil, fmt.Errorf("packetio: steering program: %w", err)
	}
	if c.filter, err = load("lvs_filter", filterProgram(c.vip4.FD(), c.vip6.FD(), c.nat4.FD(), c.nat6.FD())); err != nil {
		c.Close()
		return nil, fmt.Errorf("packetio: filter program: %w", err)
	}
	return c, nil
}

// SetVIPs adds and removes virtual addresses.
func (c *Classifier) SetVIPs(added, removed []netip.Addr) error {
	var errs []error
	for _, a := range removed {
		m, k := key(a, c.vip4, c.vip6)
		if err := m.Delete(k); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			errs = append(errs, fmt.Errorf("packetio: classifier: remove %v: %w", a, err))
		}
	}
	errs = append(errs, put(added, c.vip4, c.vip6))
	return errors.Join(errs...)
}

// AddNATSources adds addresses of masquerading real servers. None is ever
// removed: the replies of a connection outlive its real server's removal.
func (c *Classifier) AddNATSources(addrs []netip.Addr) error {
	return put(addrs, c.nat4, c.nat6)
}

func put(addrs []netip.Addr, m4, m6 *ebpf.Map) error {
	var errs []error
	for _, a := range addrs {
		m, k := key(a, m4, m6)
		if err := m.Put(k, uint8(1)); err != nil {
			errs = append(errs, fmt.Errorf("packetio: classifier: add %v: %w", a, err))
		}
	}
	return errors.Join(errs...)
}

// key returns a's map and key: an IPv4 address as the number LD_ABS loads
// (host order), an IPv6 address as the packet carries it.
func key(a netip.Addr, m4, m6 *ebpf.Map) (*ebpf.Map, any) {
	a = a.Unmap()
	if a.Is4() {
		b := a.As4()
		return m4, binary.BigEndian.Uint32(b[:])
	}
	return m6, a.As16()
}

// Close releases the programs and maps (a fanout group or a socket keeps
// its own reference to a program).
func (c *Classifier) Close() error {
	var errs []error
	for _, p := range []*ebpf.Program{c.steer, c.filter} {
		if p != nil {
			errs = append(errs, p.Close())
		}
	}
	for _, m := range []*ebpf.Map{c.vip4, c.vip6, c.nat4, c.nat6} {
		if m != nil {
			errs = append(errs, m.Close())
		}
	}
	return errors.Join(errs...)
}

// Steer returns the fanout program, Filter the socket filter (for tests
// that run them).
func (c *Classifier) Steer() *ebpf.Program  { return c.steer }
func (c *Classifier) Filter() *ebpf.Program { return c.filter }

// hasPorts jumps to ports when the protocol number in r is TCP, UDP or
// SCTP, else to other.
func hasPorts(r asm.Register, ports, other string) asm.Instructions {
	return asm.Instructions{
		asm.JEq.Imm(r, unix.IPPROTO_TCP, ports),
		asm.JEq.Imm(r, unix.IPPROTO_UDP, ports),
		asm.JEq.Imm(r, unix.IPPROTO_SCTP, ports),
		asm.Ja.Label(other),
	}
}

// lookup emits a lookup of the key at fp+off in the map with descriptor
// fd, jumping to found when it is there.
func lookup(fd int, off int16, found string) asm.Instructions {
	return asm.Instructions{
		asm.LoadMapPtr(asm.R1, fd),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, int32(off)),
		asm.FnMapLookupElem.Call(),
		asm.JNE.Imm(asm.R0, 0, found),
	}
}

// loadBytes emits bpf_skb_load_bytes_relative(skb, off, fp+dst, n,
// BPF_HDR_START_NET), jumping to fail when the packet is too short; its
// first instruction carries symbol.
func loadBytes(symbol string, off int32, dst int16, n int32, fail string) asm.Instructions {
	return asm.Instructions{
		asm.Mov.Reg(asm.R1, asm.R6).WithSymbol(symbol),
		asm.Mov.Imm(asm.R2, off),
		asm.Mov.Reg(asm.R3, asm.RFP),
		asm.Add.Imm(asm.R3, int32(dst)),
		asm.Mov.Imm(asm.R4, n),
		asm.Mov.Imm(asm.R5, unix.BPF_HDR_START_NET),
		asm.FnSkbLoadBytesRelative.Call(),
		asm.JNE.Imm(asm.R0, 0, fail),
	}
}

// netOff (SKF_NET_OFF) makes an LD_ABS or LD_IND offset relative to the
// network header, wherever skb->data points: the fanout demux runs before
// a packet socket pushes the link header back, a socket filter after, and
// BPF_PROG_TEST_RUN not at all.
const netOff = -0x100000

// ld loads size bytes at off from the network header into R0.
func ld(off int32, size asm.Size) asm.Instruction { return asm.LoadAbs(netOff+off, size) }

// program concatenates instruction lists.
func program(parts ...asm.Instructions) asm.Instructions {
	var in asm.Instructions
	for _, p := range parts {
		in = append(in, p...)
	}
	return in
}

// Offsets in IP headers, and where the programs keep a map key (on the
// stack).
const (
	ipSrcOff6 = 8
	ipDstOff6 = 24
	keyOff    = -16
)

// steerProgram returns the fanout program over the maps with descriptors
// vip4 and vip6. LD_ABS and LD_IND read in host byte order, and end the
// program with 0 when they run past the end of the packet.
//
// Registers: R6 the skb (LD_ABS's implicit operand), R7 the IPv4 header
// length, R8 the ports word (source port high, destination port low) or 0,
// R9 the client's address word.
func steerProgram(vip4, vip6 int) asm.Instructions {
	const golden = -1640531535 // 2654435761 as an int32
	return program(
		asm.Instructions{
			asm.Mov.Reg(asm.R6, asm.R1),
			asm.Mov.Imm(asm.R8, 0),
			asm.LoadMem(asm.R2, asm.R1, skbProtocol, asm.Word),
			asm.JEq.Imm(asm.R2, int32(htons(unix.ETH_P_IP)), "ip4"),
			asm.JEq.Imm(asm.R2, int32(htons(unix.ETH_P_IPV6)), "ip6"),
			asm.Ja.Label("none"),

			// IPv4: a fragment hashes on its addresses only.
			ld(0, asm.Byte).WithSymbol("ip4"),
			asm.And.Imm(asm.R0, 0x0f),
			asm.LSh.Imm(asm.R0, 2),
			asm.Mov.Reg(asm.R7, asm.R0),
			ld(6, asm.Half),
			asm.And.Imm(asm.R0, 0x3fff),
			asm.JNE.Imm(asm.R0, 0, "ip4_addrs"),
			ld(9, asm.Byte),
		},
		hasPorts(asm.R0, "ip4_ports", "ip4_addrs"),
		asm.Instructions{
			asm.LoadInd(asm.R0, asm.R7, netOff, asm.Word).WithSymbol("ip4_ports"),
			asm.Mov.Reg(asm.R8, asm.R0),
			ld(ipSrcOff, asm.Word).WithSymbol("ip4_addrs"),
			asm.Mov.Reg(asm.R9, asm.R0),
			ld(ipDstOff, asm.Word),
			asm.StoreMem(asm.RFP, keyOff, asm.R0, asm.Word),
		},
		lookup(vip4, keyOff, "to_vip"),
		asm.Instructions{
			// A reply: the client is the destination.
			asm.LoadMem(asm.R9, asm.RFP, keyOff, asm.Word),
			asm.Ja.Label("reply"),

			// IPv6: the whole destination is the key; the last words of
			// the addresses are hashed.
			ld(6, asm.Byte).WithSymbol("ip6"),
		},
		hasPorts(asm.R0, "ip6_ports", "ip6_addrs"),
		asm.Instructions{
			ld(40, asm.Word).WithSymbol("ip6_ports"),
			asm.Mov.Reg(asm.R8, asm.R0),
		},
		loadBytes("ip6_addrs", ipDstOff6, keyOff, 16, "none"),
		asm.Instructions{
			ld(ip6SrcLastWord, asm.Word),
			asm.Mov.Reg(asm.R9, asm.R0),
		},
		lookup(vip6, keyOff, "to_vip"),
		asm.Instructions{
			ld(ip6DstLastWord, asm.Word),
			asm.Mov.Reg(asm.R9, asm.R0),

			// The client's port: the destination port of a reply…
			asm.Mov.Reg(asm.R0, asm.R8).WithSymbol("reply"),
			asm.And.Imm(asm.R0, 0xffff),
			asm.Ja.Label("hash"),
			// …the source port of a packet to a virtual address.
			asm.Mov.Reg(asm.R0, asm.R8).WithSymbol("to_vip"),
			asm.RSh.Imm(asm.R0, 16),
			// ((address + port) × 2654435761) >> 16, in 32 bits as
			// Fanout's.
			asm.Add.Reg32(asm.R0, asm.R9).WithSymbol("hash"),
			asm.Mul.Imm32(asm.R0, golden),
			asm.RSh.Imm32(asm.R0, 16),
			asm.Return(),
			asm.Mov.Imm(asm.R0, 0).WithSymbol("none"),
			asm.Return(),
		})
}

// filterProgram returns the socket filter over the maps with descriptors
// vip4, vip6, nat4 and nat6.
func filterProgram(vip4, vip6, nat4, nat6 int) asm.Instructions {
	return program(
		asm.Instructions{
			asm.Mov.Reg(asm.R6, asm.R1),
			asm.LoadMem(asm.R2, asm.R1, skbProtocol, asm.Word),
			asm.JEq.Imm(asm.R2, int32(htons(unix.ETH_P_IP)), "ip4"),
			asm.JEq.Imm(asm.R2, int32(htons(unix.ETH_P_IPV6)), "ip6"),
			asm.Ja.Label("pass"),

			// IPv4: to a virtual address, not TCP/UDP/SCTP, or from a NAT
			// real server.
			ld(ipDstOff, asm.Word).WithSymbol("ip4"),
			asm.StoreMem(asm.RFP, keyOff, asm.R0, asm.Word),
		},
		lookup(vip4, keyOff, "pass"),
		asm.Instructions{ld(9, asm.Byte)},
		hasPorts(asm.R0, "ip4_ports", "pass"),
		asm.Instructions{
			ld(ipSrcOff, asm.Word).WithSymbol("ip4_ports"),
			asm.StoreMem(asm.RFP, keyOff, asm.R0, asm.Word),
		},
		lookup(nat4, keyOff, "pass"),
		asm.Instructions{asm.Ja.Label("drop")},

		// IPv6: the same on the fixed header.
		loadBytes("ip6", ipDstOff6, keyOff, 16, "drop"),
		lookup(vip6, keyOff, "pass"),
		asm.Instructions{ld(6, asm.Byte)},
		hasPorts(asm.R0, "ip6_ports", "pass"),
		loadBytes("ip6_ports", ipSrcOff6, keyOff, 16, "drop"),
		lookup(nat6, keyOff, "pass"),
		asm.Instructions{
			asm.Mov.Imm(asm.R0, 0).WithSymbol("drop"),
			asm.Return(),
			asm.Mov.Imm(asm.R0, -1).WithSymbol("pass"), // the whole frame
			asm.Return(),
		})
}

// joinSteering joins fd to fanout group id running c's steering program.
func joinSteering(fd int, id uint16, c *Classifier) error {
	arg := int(id) | (unix.PACKET_FANOUT_EBPF|unix.PACKET_FANOUT_FLAG_IGNORE_OUTGOING)<<16
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_FANOUT, arg); err != nil {
		return fmt.Errorf("packetio: PACKET_FANOUT group %d: %w", id, err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_FANOUT_DATA, c.steer.FD()); err != nil {
		return fmt.Errorf("packetio: PACKET_FANOUT_DATA: %w", err)
	}
	return nil
}

// attachFilter makes c's filter fd's socket filter.
func attachFilter(fd int, c *Classifier) error {
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ATTACH_BPF, c.filter.FD()); err != nil {
		return fmt.Errorf("packetio: SO_ATTACH_BPF: %w", err)
	}
	return nil
}
