// Package ipipd is lvslab's userspace IPIP decapsulator, for TUN real
// servers on kernels without the ipip driver. It runs as an agent inside the
// real server's namespace: IPIP packets addressed to the node come in on an
// AF_PACKET socket (which sees them before the netdev-ingress rule that keeps
// the kernel from answering "protocol unreachable"), lose their outer header,
// and go to the local stack through a TUN device, as the kernel's tunl0 would
// hand them on. Checksum-offload state travels along in the virtio-net
// header both ways, so a packet whose checksum veth left partial is completed
// by the kernel, not broken. Frames are read in batches, and consecutive TCP
// segments of a flow are merged into one GSO packet before they are written
// (coalescer), as GRO would merge them on a real link.
package ipipd

import (
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"os"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/vishvananda/netlink"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"

	"github.com/lvslab/lvslab/dataplane/defrag"
	"github.com/lvslab/lvslab/topo/agent"
)

func init() { agent.Register("ipipd", run) }

func run(ctx context.Context, env *agent.Env, args []string) error {
	fs := flag.NewFlagSet("ipipd", flag.ContinueOnError)
	tun := fs.String("tun", "ipip0", "TUN device that delivers inner packets")
	if err := fs.Parse(args); err != nil {
		return err
	}
	d, err := Open(*tun)
	if err != nil {
		return err
	}
	defer d.Close()
	env.Ready()
	err = d.Serve(ctx)
	s := d.Stats()
	fmt.Fprintf(os.Stderr, "ipipd: received %d delivered %d malformed %d fragments %d write errors %d\n",
		s.Received, s.Delivered, s.Malformed, s.Fragments, s.WriteErrors)
	return err
}

// Header sizes of a received frame: virtio-net header, then Ethernet.
const (
	vnetHdrLen = 10
	ethHdrLen  = 14
	bufLen     = 1 << 17
	snapLen    = 1 << 18
	// batch is how many frames one read takes.
	batch = 16
)

// virtio_net_hdr fields (host byte order on packet and TUN sockets).
const (
	vnetFlagNeedsCsum = 1
	vnetFlags         = 0
	vnetGSOType       = 1
	vnetHdrLenOff     = 2
	vnetCsumStart     = 6
)

// Stats counts what the decapsulator did: frames received, packets written
// to the TUN device (merged segments count once), frames dropped.
type Stats struct {
	Received, Delivered, Malformed, Fragments, WriteErrors uint64 // Fragments: of outer packets, reassembled
}

// Decapsulator moves IPIP payloads from the node's links to its stack.
type Decapsulator struct {
	pkt  *os.File // AF_PACKET, non-blocking, on the runtime poller
	tun  int
	bufs [][]byte
	hdrs []unix.Mmsghdr
	iovs []unix.Iovec
	co   *coalescer
	// frags reassembles fragmented outer packets (a director fragments
	// an IPIP packet larger than its route's MTU when DF is clear).
	frags *defrag.Table

	received, delivered, malformed, fragments, writeErrors atomic.Uint64
}

// Open creates the TUN device name (up, rp_filter=0) and the packet socket.
func Open(name string) (*Decapsulator, error) {
	tun, err := openTun(name)
	if err != nil {
		return nil, fmt.Errorf("tun %s: %w", name, err)
	}
	d := &Decapsulator{tun: tun, co: newCoalescer(), hdrs: make([]unix.Mmsghdr, batch), iovs: make([]unix.Iovec, batch),
		frags: defrag.New(defrag.Config{Queues: 16, Headroom: vnetHdrLen})}
	mem := make([]byte, batch*bufLen)
	for i := range batch {
		d.bufs = append(d.bufs, mem[i*bufLen:(i+1)*bufLen:(i+1)*bufLen])
	}
	link, err := netlink.LinkByName(name)
	if err == nil {
		err = netlink.LinkSetUp(link)
	}
	if err == nil {
		// The inner source routes out of eth0, not back through the tunnel.
		err = os.WriteFile("/proc/sys/net/ipv4/conf/"+name+"/rp_filter", []byte("0"), 0o644)
	}
	if err != nil {
		unix.Close(tun)
		return nil, fmt.Errorf("tun %s: %w", name, err)
	}
	if d.pkt, err = openPacket(link.Attrs().Index); err != nil {
		unix.Close(tun)
		return nil, fmt.Errorf("packet socket: %w", err)
	}
	return d, nil
}

func openTun(name string) (int, error) {
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		unix.Close(fd)
		return -1, err
	}
	ifr.SetUint16(unix.IFF_TUN | unix.IFF_NO_PI | unix.IFF_VNET_HDR)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

// openPacket opens an ETH_P_ALL packet socket with a filter that passes
// only IPIP packets addressed to this host, arriving on any link but the TUN.
func openPacket(tunIndex int) (*os.File, error) {
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	prog, err := bpf.Assemble([]bpf.Instruction{
		bpf.LoadExtension{Num: bpf.ExtType},
		bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: unix.PACKET_HOST, SkipTrue: 7},
		bpf.LoadExtension{Num: bpf.ExtInterfaceIndex},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: uint32(tunIndex), SkipTrue: 5},
		bpf.LoadExtension{Num: bpf.ExtProto},
		bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: unix.ETH_P_IP, SkipTrue: 3},
		bpf.LoadAbsolute{Off: ethHdrLen + 9, Size: 1},
		bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: unix.IPPROTO_IPIP, SkipTrue: 1},
		bpf.RetConstant{Val: snapLen},
		bpf.RetConstant{Val: 0},
	})
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	filter := make([]unix.SockFilter, len(prog))
	for i, ins := range prog {
		filter[i] = unix.SockFilter{Code: ins.Op, Jt: ins.Jt, Jf: ins.Jf, K: ins.K}
	}
	steps := []func() error{
		func() error {
			return unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]})
		},
		func() error { return unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_VNET_HDR, 1) },
		// A director splits each 64 KB TCP packet into some 45 tunnelled
		// segments sent back to back; the default buffer (~90 frames)
		// drops bursts of them.
		func() error { return unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 4<<20) },
		func() error {
			return unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL)})
		},
	}
	for _, step := range steps {
		if err := step(); err != nil {
			unix.Close(fd)
			return nil, err
		}
	}
	return os.NewFile(uintptr(fd), "ipipd-packet"), nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// Serve decapsulates until ctx ends.
func (d *Decapsulator) Serve(ctx context.Context) error {
	rc, err := d.pkt.SyscallConn()
	if err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, func() { d.pkt.Close() })
	defer stop()
	var rerr error
	drain := func(fd uintptr) bool {
		for {
			n, err := d.read(int(fd))
			if err != nil {
				rerr = err
				return true
			}
			if n == 0 {
				// Nothing more waiting: what is pending goes now.
				d.flush()
				return false
			}
			for i := range n {
				d.decap(d.bufs[i][:d.hdrs[i].Len])
			}
		}
	}
	err = rc.Read(drain)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err != nil {
		return err
	}
	return rerr
}

// read receives up to a batch of frames with recvmmsg, without blocking;
// 0 means nothing was waiting. Like every system call on the packet path
// it is raw: the runtime's entersyscall would wake its sysmon thread.
func (d *Decapsulator) read(fd int) (int, error) {
	for i := range d.hdrs {
		d.iovs[i].Base = &d.bufs[i][0]
		d.iovs[i].SetLen(bufLen)
		d.hdrs[i] = unix.Mmsghdr{}
		d.hdrs[i].Hdr.Iov = &d.iovs[i]
		d.hdrs[i].Hdr.SetIovlen(1)
	}
	for {
		r, _, e := unix.RawSyscall6(unix.SYS_RECVMMSG, uintptr(fd), uintptr(unsafe.Pointer(&d.hdrs[0])), uintptr(len(d.hdrs)),
			unix.MSG_DONTWAIT, 0, 0)
		switch e {
		case 0:
			return int(r), nil
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return 0, nil
		}
		return 0, e
	}
}

// decap takes one received frame: its inner packet joins the pending one,
// or the pending one goes and this one waits to be joined, or it goes at
// once.
func (d *Decapsulator) decap(frame []byte) {
	d.received.Add(1)
	inner, err := Decap(frame)
	if errors.Is(err, ErrFragment) {
		d.fragments.Add(1)
		if inner, err = d.reassemble(frame, time.Now()); inner == nil && err == nil {
			return // not whole yet
		}
	}
	if err != nil {
		d.malformed.Add(1)
		return
	}
	if d.co.merge(inner) {
		return
	}
	d.flush()
	if !d.co.start(inner) {
		d.write(inner)
	}
}

// reassemble queues the fragment of an outer packet in frame (its header
// checked by Decap) and decapsulates the packet it completes, if it does:
// the kernel reassembles an IPIP packet before ipip_rcv sees it.
func (d *Decapsulator) reassemble(frame []byte, now time.Time) ([]byte, error) {
	frame = frame[vnetHdrLen:]
	total := int(binary.BigEndian.Uint16(frame[ethHdrLen+2:]))
	d.frags.Expire(now, nil)
	g, ok := d.frags.Add(frame, ethHdrLen, total, now)
	if !ok {
		return nil, nil
	}
	whole := g.Buf[g.Off-vnetHdrLen : g.Off+g.Len]
	clear(whole[:vnetHdrLen]) // no offload state: the fragments had none
	return Decap(whole)
}

// flush writes the pending packet, if any.
func (d *Decapsulator) flush() {
	if p := d.co.take(); p != nil {
		d.write(p)
	}
}

func (d *Decapsulator) write(p []byte) {
	_, _, e := unix.RawSyscall(unix.SYS_WRITE, uintptr(d.tun), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
	if e != 0 {
		d.writeErrors.Add(1)
		return
	}
	d.delivered.Add(1)
}

// Stats returns the counters.
func (d *Decapsulator) Stats() Stats {
	return Stats{
		Received: d.received.Load(), Delivered: d.delivered.Load(), Malformed: d.malformed.Load(),
		Fragments: d.fragments.Load(), WriteErrors: d.writeErrors.Load(),
	}
}

// Close releases the socket and the TUN device.
func (d *Decapsulator) Close() error {
	d.pkt.Close()
	return unix.Close(d.tun)
}

// Reasons Decap rejects a frame.
var (
	ErrShort    = errors.New("truncated frame")
	ErrNotIPIP  = errors.New("not an IPv4-in-IPv4 packet")
	ErrFragment = errors.New("fragmented outer packet")
	ErrOffload  = errors.New("offload header points outside the inner packet")
)

// Decap turns a received frame (virtio-net header, Ethernet, outer IPv4,
// inner IPv4) into what a TUN device with IFF_VNET_HDR takes (virtio-net
// header, inner IPv4), in place, and returns that slice of frame. Offsets in
// the virtio-net header are moved to the inner packet.
func Decap(frame []byte) ([]byte, error) {
	const outerAt = vnetHdrLen + ethHdrLen
	if len(frame) < outerAt+20 {
		return nil, ErrShort
	}
	outer := frame[outerAt:]
	ihl := int(outer[0]&0x0f) * 4
	total := int(binary.BigEndian.Uint16(outer[2:]))
	if outer[0]>>4 != 4 || ihl < 20 || outer[9] != unix.IPPROTO_IPIP {
		return nil, ErrNotIPIP
	}
	if total < ihl+20 || total > len(outer) {
		return nil, ErrShort
	}
	if frag := binary.BigEndian.Uint16(outer[6:]); frag&0x3fff != 0 {
		return nil, ErrFragment // MF set or a non-zero offset
	}
	inner := outer[ihl:total]
	innerTotal := int(binary.BigEndian.Uint16(inner[2:]))
	if inner[0]>>4 != 4 || int(inner[0]&0x0f)*4 < 20 || innerTotal < 20 || innerTotal > len(inner) {
		return nil, ErrNotIPIP
	}
	inner = inner[:innerTotal]

	hdr := frame[:vnetHdrLen]
	flags, gso := hdr[vnetFlags], hdr[vnetGSOType]
	hdrLen := binary.NativeEndian.Uint16(hdr[vnetHdrLenOff:])
	csumStart := binary.NativeEndian.Uint16(hdr[vnetCsumStart:])
	gsoSize := binary.NativeEndian.Uint16(hdr[4:])
	csumOffset := binary.NativeEndian.Uint16(hdr[8:])
	shift := uint16(ethHdrLen + ihl)
	if flags&vnetFlagNeedsCsum != 0 {
		if csumStart < shift || int(csumStart-shift)+int(csumOffset)+2 > len(inner) {
			return nil, ErrOffload
		}
		csumStart -= shift
	}
	if hdrLen >= shift {
		hdrLen -= shift
	} else {
		hdrLen = 0
	}
	out := frame[outerAt+ihl-vnetHdrLen : outerAt+ihl+innerTotal]
	out[vnetFlags], out[vnetGSOType] = flags, gso
	binary.NativeEndian.PutUint16(out[vnetHdrLenOff:], hdrLen)
	binary.NativeEndian.PutUint16(out[4:], gsoSize)
	binary.NativeEndian.PutUint16(out[vnetCsumStart:], csumStart)
	binary.NativeEndian.PutUint16(out[8:], csumOffset)
	return out, nil
}
