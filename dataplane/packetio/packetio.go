// Package packetio moves batches of Ethernet frames between the director
// and its interfaces. Its first backend is AF_PACKET: an ETH_P_ALL socket
// bound to one interface, with PACKET_VNET_HDR both ways (so a 64 KB GSO
// TCP packet from veth crosses whole, its CHECKSUM_PARTIAL state intact),
// PACKET_QDISC_BYPASS, PACKET_IGNORE_OUTGOING (the director never reads its
// own sends), non-blocking recvmmsg/sendmmsg, and fanout that sends both
// directions of a NAT flow to the same worker: a classic BPF program when
// each interface faces one end (Fanout.Side), an eBPF one that tells the
// ends apart by the virtual addresses otherwise (Classifier, whose socket
// filter also keeps from a director what it does not forward). Ring
// receives through a TPACKET_V2 ring instead; OpenWorkers opens a socket
// per interface per worker with a Poller each; KernelOff keeps the
// namespace's own stack off the packets (an nftables netdev ingress drop,
// which runs after the taps).
//
// The package does not parse or rewrite packets (parse, xmit) and keeps no
// flow state.
package packetio

import "github.com/lvslab/lvslab/dataplane/header"

// Packet is one frame of a batch: its virtio_net_hdr and the frame at
// Buf[Off:Off+Len]. Buf has room in front of Off for headers a transmitter
// prepends (xmit.TunnelHeadroom) and behind for the largest GSO packet.
type Packet struct {
	Vnet [header.VirtioNetHdrSize]byte
	Buf  []byte
	Off  int
	Len  int
	// PktType is the sll_pkttype the kernel gave a received frame
	// (unix.PACKET_HOST, PACKET_BROADCAST, PACKET_OTHERHOST…).
	PktType uint8
}

// Frame returns the frame.
func (p *Packet) Frame() []byte { return p.Buf[p.Off : p.Off+p.Len] }

// VnetHdr returns a view of the virtio_net_hdr.
func (p *Packet) VnetHdr() header.VirtioNetHdr { return p.Vnet[:] }

// Sizes of packet buffers.
const (
	// Headroom is the room kept in front of each received frame.
	Headroom = 64
	// MaxFrame is the largest frame a GSO packet makes (64 KB of IP
	// packet and the Ethernet header).
	MaxFrame = 65535 + header.EthernetSize
)

// NewBatch returns n packets, each with its own Headroom+MaxFrame buffer,
// carved from one allocation.
func NewBatch(n int) []Packet {
	const size = Headroom + MaxFrame
	mem := make([]byte, n*size)
	b := make([]Packet, n)
	for i := range b {
		b[i].Buf = mem[i*size : (i+1)*size : (i+1)*size]
		b[i].Off = Headroom
	}
	return b
}
