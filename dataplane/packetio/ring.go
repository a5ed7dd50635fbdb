package packetio

import (
	"fmt"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/lvslab/lvslab/dataplane/header"
)

// Ring is an AF_PACKET socket that receives through a TPACKET_V2 ring
// mapped into the process (no copy per read, no syscall while frames are
// waiting) and sends with sendmmsg like AFPacket. TPACKET_V3 is not
// offered: its block retire timer adds up to a millisecond per hop.
//
// The frames ReadBatch returns point into the ring and stay valid until the
// next ReadBatch, which hands them back to the kernel: send (or copy)
// them before reading again.
type Ring struct {
	*AFPacket
	mem       []byte
	frameSize int
	frames    int
	next      int
	held      []int
}

// tpacket2_hdr layout and ring constants (linux/if_packet.h).
const (
	tpStatus     = 0
	tpLen        = 4
	tpSnaplen    = 8
	tpMac        = 12
	tpacket2Size = 32
	sllPkttype   = tpacket2Size + 10 // sockaddr_ll follows at TPACKET_ALIGN(32)
	ringHdrEnd   = tpacket2Size + 20 // end of the sockaddr_ll

	tpStatusKernel = 0
	tpStatusUser   = 1

	// ringFrameSize holds a 64 KB GSO packet, its virtio_net_hdr, the
	// ring headers and Headroom: a multiple of the page size, so one
	// frame per block.
	ringFrameSize = 17 * 4096
)

// OpenRing opens a ring socket on ifindex with cfg.RingFrames slots,
// reading and writing batches of up to batch frames.
func OpenRing(ifindex, batch int, cfg Config) (*Ring, error) {
	frames := cfg.RingFrames
	if frames <= 0 {
		frames = DefaultRingFrames
	}
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("packetio: socket: %w", err)
	}
	r := &Ring{AFPacket: &AFPacket{fd: fd, vnet: cfg.Vnet}, frameSize: ringFrameSize, frames: frames}
	err = r.setup(ifindex, cfg, func() error {
		if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_VERSION, unix.TPACKET_V2); err != nil {
			return fmt.Errorf("packetio: PACKET_VERSION: %w", err)
		}
		if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_RESERVE, Headroom); err != nil {
			return fmt.Errorf("packetio: PACKET_RESERVE: %w", err)
		}
		req := unix.TpacketReq{Block_size: ringFrameSize, Block_nr: uint32(frames), Frame_size: ringFrameSize, Frame_nr: uint32(frames)}
		if err := unix.SetsockoptTpacketReq(fd, unix.SOL_PACKET, unix.PACKET_RX_RING, &req); err != nil {
			return fmt.Errorf("packetio: PACKET_RX_RING: %w", err)
		}
		mem, err := unix.Mmap(fd, 0, frames*ringFrameSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
		if err != nil {
			return fmt.Errorf("packetio: mmap ring: %w", err)
		}
		r.mem = mem
		return nil
	})
	if err != nil {
		if r.mem != nil {
			unix.Munmap(r.mem)
		}
		unix.Close(fd)
		return nil, err
	}
	r.init(batch)
	r.held = make([]int, 0, min(batch, frames)) // never hand out a slot twice
	return r, nil
}

func (r *Ring) status(i int) *uint32 {
	return (*uint32)(unsafe.Pointer(&r.mem[i*r.frameSize+tpStatus]))
}

// ReadBatch hands the previous batch's frames back to the kernel and
// returns the frames waiting in the ring, up to len(pkts), without
// blocking. Packets point into the ring (Buf is the frame's slot after the
// ring headers).
func (r *Ring) ReadBatch(pkts []Packet) (int, error) {
	for _, i := range r.held {
		atomic.StoreUint32(r.status(i), tpStatusKernel)
	}
	r.held = r.held[:0]
	n := 0
	for n < len(pkts) && len(r.held) < cap(r.held) {
		i := r.next
		st := atomic.LoadUint32(r.status(i))
		if st&tpStatusUser == 0 {
			break
		}
		r.next = (r.next + 1) % r.frames
		r.held = append(r.held, i)
		f := r.mem[i*r.frameSize : (i+1)*r.frameSize]
		length := int(*(*uint32)(unsafe.Pointer(&f[tpLen])))
		snap := int(*(*uint32)(unsafe.Pointer(&f[tpSnaplen])))
		mac := int(*(*uint16)(unsafe.Pointer(&f[tpMac])))
		switch {
		case snap < length:
			r.Stats.Truncated++
			continue
		case f[sllPkttype] == unix.PACKET_OUTGOING:
			r.Stats.Outgoing++
			continue
		}
		p := &pkts[n]
		if r.vnet {
			copy(p.Vnet[:], f[mac-header.VirtioNetHdrSize:mac])
		}
		p.Buf = f[ringHdrEnd:]
		p.Off = mac - ringHdrEnd
		p.Len = snap
		p.PktType = f[sllPkttype]
		n++
	}
	return n, nil
}

// Close unmaps the ring and closes the socket.
func (r *Ring) Close() error {
	unix.Munmap(r.mem)
	return r.AFPacket.Close()
}
