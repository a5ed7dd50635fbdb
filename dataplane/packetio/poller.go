package packetio

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Poller waits until one of a worker's sockets has frames to read. A worker
// runs one loop in one goroutine, draining each ready socket with
// non-blocking ReadBatch calls: no goroutine per socket, no blocking reads.
// Stop wakes it for good.
//
// The sockets sit in an epoll set of their own, and that set's descriptor
// sits in the Go runtime's network poller: a waiting worker parks like any
// goroutine waiting for a network connection, holding no thread and no P.
// Neither waiting nor draining enters the runtime's system-call bookkeeping
// (entersyscall): each entry wakes the runtime's sysmon thread if it was
// asleep and sets it polling every 20 µs again, and a worker that goes idle
// between packets then pays for sysmon on every packet (measured: a fifth
// of the director's CPU at 20 kpps).
type Poller struct {
	ep     int
	wake   int
	file   *os.File // ep, registered with the runtime's poller
	conn   syscall.RawConn
	events []unix.EpollEvent
}

// NewPoller watches the sockets with descriptors fds (level-triggered).
func NewPoller(fds ...int) (*Poller, error) {
	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("packetio: epoll_create: %w", err)
	}
	wake, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(ep)
		return nil, fmt.Errorf("packetio: eventfd: %w", err)
	}
	p := &Poller{ep: ep, wake: wake, events: make([]unix.EpollEvent, len(fds)+1)}
	add := func(fd int, tag int32) error {
		return unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: tag})
	}
	if err := add(wake, -1); err != nil {
		p.Close()
		return nil, fmt.Errorf("packetio: epoll_ctl: %w", err)
	}
	for i, fd := range fds {
		if err := add(fd, int32(i)); err != nil {
			p.Close()
			return nil, fmt.Errorf("packetio: epoll_ctl: %w", err)
		}
	}
	// os.NewFile registers a non-blocking descriptor with the runtime's
	// poller; an epoll descriptor is readable while its set has events.
	if err := unix.SetNonblock(ep, true); err != nil {
		p.Close()
		return nil, fmt.Errorf("packetio: epoll set non-blocking: %w", err)
	}
	p.file = os.NewFile(uintptr(ep), "epoll")
	if p.conn, err = p.file.SyscallConn(); err != nil {
		p.Close()
		return nil, fmt.Errorf("packetio: epoll: %w", err)
	}
	return p, nil
}

// ErrStopped is returned by Wait after Stop.
var ErrStopped = errors.New("packetio: poller stopped")

// Wait blocks until a socket is readable and sets ready[i] for each
// readable socket i (in NewPoller's order).
func (p *Poller) Wait(ready []bool) error {
	var (
		n   int
		err error
	)
	rerr := p.conn.Read(func(uintptr) bool {
		n, err = epollPoll(p.ep, p.events)
		return n != 0 || err != nil
	})
	if err == nil {
		err = rerr
	}
	if err != nil {
		return fmt.Errorf("packetio: epoll_wait: %w", err)
	}
	clear(ready)
	for _, e := range p.events[:n] {
		if e.Fd < 0 {
			return ErrStopped
		}
		ready[e.Fd] = true
	}
	return nil
}

// epollPoll returns the events waiting in the set, without blocking. It is
// a raw system call, like ReadBatch's and WriteBatch's: the runtime's
// entersyscall wakes a sleeping sysmon and resets its period to 20 µs, so a
// worker that goes idle between packets would keep sysmon busy.
func epollPoll(ep int, events []unix.EpollEvent) (int, error) {
	for {
		n, _, e := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(ep), uintptr(unsafe.Pointer(&events[0])),
			uintptr(len(events)), 0, 0, 0)
		switch e {
		case 0:
			return int(n), nil
		case unix.EINTR:
			continue
		}
		return 0, e
	}
}

// Stop makes every Wait, present and future, return ErrStopped.
func (p *Poller) Stop() {
	var one [8]byte
	binary.NativeEndian.PutUint64(one[:], 1)
	unix.Write(p.wake, one[:])
}

// Close releases the poller; the sockets stay open.
func (p *Poller) Close() error {
	unix.Close(p.wake)
	if p.file != nil {
		return p.file.Close()
	}
	return unix.Close(p.ep)
}
