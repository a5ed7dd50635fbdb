package packetio

import (
	"errors"
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/lvslab/lvslab/dataplane/header"
)

// Config configures an AF_PACKET socket.
type Config struct {
	// Vnet enables PACKET_VNET_HDR. Without it, CHECKSUM_PARTIAL and GSO
	// packets from veth lose their offload state and arrive broken: leave
	// it on unless every peer runs with offloads off.
	Vnet bool
	// QdiscBypass sends straight to the driver (PACKET_QDISC_BYPASS).
	QdiscBypass bool
	// Fanout joins a fanout group, so that several sockets (one per
	// worker) share the interface's traffic.
	Fanout *Fanout
	// Filter, if set, passes the socket only what its classifier says a
	// director forwards (Classifier.Filter).
	Filter *Classifier
	// BufferBytes sets SO_RCVBUF and SO_SNDBUF (with the FORCE variants);
	// 0 keeps the defaults.
	BufferBytes int
	// RingFrames is the number of TPACKET_V2 slots of a Ring (0:
	// DefaultRingFrames). Each slot holds a whole GSO packet, so small
	// packets waste most of one: the ring drops sooner than a socket
	// buffer of the same memory.
	RingFrames int
}

// DefaultRingFrames is the ring size when Config.RingFrames is 0: 256
// slots of 68 KB, 17 MB of kernel memory per socket.
const DefaultRingFrames = 256

// Stats counts what a socket dropped on its own.
type Stats struct {
	Truncated uint64 // frames larger than the buffer (MSG_TRUNC)
	Outgoing  uint64 // our own sends seen despite PACKET_IGNORE_OUTGOING
	SendErrs  uint64 // frames the kernel refused (skipped)
}

// AFPacket is an AF_PACKET socket bound to one interface.
type AFPacket struct {
	fd    int
	vnet  bool
	hdrs  []unix.Mmsghdr
	iovs  []unix.Iovec
	names []unix.RawSockaddrLinklayer
	Stats Stats
}

// Open opens an AF_PACKET socket on the interface with index ifindex in the
// calling thread's network namespace. batch is the largest batch the
// socket will read or write.
func Open(ifindex int, batch int, cfg Config) (*AFPacket, error) {
	// Protocol 0 until bind: the socket sees nothing from other interfaces
	// before it is bound.
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("packetio: socket: %w", err)
	}
	s := &AFPacket{fd: fd, vnet: cfg.Vnet}
	if err := s.setup(ifindex, cfg, nil); err != nil {
		unix.Close(fd)
		return nil, err
	}
	s.init(batch)
	return s, nil
}

func (s *AFPacket) init(batch int) {
	s.hdrs = make([]unix.Mmsghdr, batch)
	s.iovs = make([]unix.Iovec, 2*batch)
	s.names = make([]unix.RawSockaddrLinklayer, batch)
}

// setup sets the socket options, calls ring (if any) to set up a ring
// before the socket is bound, binds and joins the fanout group.
func (s *AFPacket) setup(ifindex int, cfg Config, ring func() error) error {
	opt := func(name string, level, o, v int) error {
		if err := unix.SetsockoptInt(s.fd, level, o, v); err != nil {
			return fmt.Errorf("packetio: %s: %w", name, err)
		}
		return nil
	}
	if cfg.Vnet {
		if err := opt("PACKET_VNET_HDR", unix.SOL_PACKET, unix.PACKET_VNET_HDR, 1); err != nil {
			return err
		}
	}
	if cfg.QdiscBypass {
		if err := opt("PACKET_QDISC_BYPASS", unix.SOL_PACKET, unix.PACKET_QDISC_BYPASS, 1); err != nil {
			return err
		}
	}
	if err := opt("PACKET_IGNORE_OUTGOING", unix.SOL_PACKET, unix.PACKET_IGNORE_OUTGOING, 1); err != nil {
		return err
	}
	if cfg.BufferBytes > 0 {
		if err := opt("SO_RCVBUFFORCE", unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, cfg.BufferBytes); err != nil {
			return err
		}
		if err := opt("SO_SNDBUFFORCE", unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, cfg.BufferBytes); err != nil {
			return err
		}
	}
	if ring != nil {
		if err := ring(); err != nil {
			return err
		}
	}
	if cfg.Filter != nil {
		if err := attachFilter(s.fd, cfg.Filter); err != nil {
			return err
		}
	}
	sa := &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifindex}
	if err := unix.Bind(s.fd, sa); err != nil {
		return fmt.Errorf("packetio: bind ifindex %d: %w", ifindex, err)
	}
	if cfg.Fanout != nil {
		return cfg.Fanout.join(s.fd)
	}
	return nil
}

// Fd returns the socket's descriptor, for a poller.
func (s *AFPacket) Fd() int { return s.fd }

// Close closes the socket.
func (s *AFPacket) Close() error { return unix.Close(s.fd) }

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// ReadBatch reads up to len(pkts) frames without blocking and returns how
// many it read; 0 with a nil error means nothing was waiting. Each packet's
// Off is reset to Headroom. Frames cut short by the buffer and our own
// outgoing frames are skipped and counted.
func (s *AFPacket) ReadBatch(pkts []Packet) (int, error) {
	n := min(len(pkts), len(s.hdrs))
	for i := range n {
		p := &pkts[i]
		p.Off = Headroom
		s.prepare(i, p, len(p.Buf)-Headroom)
		s.hdrs[i].Hdr.Name = (*byte)(unsafe.Pointer(&s.names[i]))
		s.hdrs[i].Hdr.Namelen = uint32(unsafe.Sizeof(s.names[i]))
	}
	got, err := mmsg(unix.SYS_RECVMMSG, s.fd, s.hdrs[:n], unix.MSG_DONTWAIT)
	if err != nil {
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
			return 0, nil
		}
		return 0, fmt.Errorf("packetio: recvmmsg: %w", err)
	}
	// Compact away what we do not pass on.
	out := 0
	for i := range got {
		h := &s.hdrs[i]
		switch {
		case h.Hdr.Flags&unix.MSG_TRUNC != 0:
			s.Stats.Truncated++
			continue
		case s.names[i].Pkttype == unix.PACKET_OUTGOING:
			s.Stats.Outgoing++
			continue
		}
		l := int(h.Len)
		if s.vnet {
			l -= header.VirtioNetHdrSize
		}
		if l < 0 {
			continue
		}
		if out != i {
			pkts[out].Vnet, pkts[i].Vnet = pkts[i].Vnet, pkts[out].Vnet
			pkts[out].Buf, pkts[i].Buf = pkts[i].Buf, pkts[out].Buf
		}
		pkts[out].Len = l
		pkts[out].PktType = s.names[i].Pkttype
		out++
	}
	return out, nil
}

// prepare points message i at p's virtio_net_hdr and frame buffer.
func (s *AFPacket) prepare(i int, p *Packet, size int) {
	iov := s.iovs[2*i : 2*i+2]
	k := 0
	if s.vnet {
		iov[0].Base = &p.Vnet[0]
		iov[0].SetLen(header.VirtioNetHdrSize)
		k = 1
	}
	iov[k].Base = &p.Buf[p.Off]
	iov[k].SetLen(size)
	s.hdrs[i] = unix.Mmsghdr{}
	s.hdrs[i].Hdr.Iov = &iov[0]
	s.hdrs[i].Hdr.SetIovlen(k + 1)
}

// WriteBatch sends the frames of pkts, waiting for room in the socket's
// buffer when it is full. A frame the kernel refuses (too big, malformed
// offload description) is skipped and counted in Stats.SendErrs. It
// returns the number of frames handed to the kernel.
func (s *AFPacket) WriteBatch(pkts []Packet) (int, error) {
	sent := 0
	for len(pkts) > 0 {
		n := min(len(pkts), len(s.hdrs))
		for i := range n {
			p := &pkts[i]
			// Only NEEDS_CSUM means something on send.
			p.Vnet[0] &= header.VirtioNetHdrFNeedsCsum
			s.prepare(i, p, p.Len)
		}
		got, err := mmsg(unix.SYS_SENDMMSG, s.fd, s.hdrs[:n], unix.MSG_DONTWAIT)
		switch {
		case err == nil:
			sent += got
			pkts = pkts[got:]
		case errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.ENOBUFS):
			if err := s.waitWritable(); err != nil {
				return sent, err
			}
		case errors.Is(err, unix.EINTR):
		default:
			// The first message failed: skip it and go on.
			s.Stats.SendErrs++
			pkts = pkts[1:]
		}
	}
	return sent, nil
}

func (s *AFPacket) waitWritable() error {
	fds := []unix.PollFd{{Fd: int32(s.fd), Events: unix.POLLOUT}}
	for {
		_, err := unix.Poll(fds, 100)
		if err == nil || !errors.Is(err, unix.EINTR) {
			if err != nil {
				return fmt.Errorf("packetio: poll: %w", err)
			}
			return nil
		}
	}
}

// mmsg calls recvmmsg or sendmmsg with MSG_DONTWAIT as a raw system call:
// it never blocks, and the runtime's entersyscall/exitsyscall pair would
// cost more than it saves (a send that runs the receiver's softirq long
// enough makes sysmon hand the worker's P to another thread, which the
// worker must then take back).
func mmsg(trap uintptr, fd int, hdrs []unix.Mmsghdr, flags int) (int, error) {
	r, _, e := unix.RawSyscall6(trap, uintptr(fd), uintptr(unsafe.Pointer(&hdrs[0])), uintptr(len(hdrs)), uintptr(flags), 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(r), nil
}
