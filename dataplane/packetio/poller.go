package packetio

import (
	"encoding/binary"
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// Poller waits until one of a worker's sockets has frames to read. A worker
// runs one poll loop on one locked OS thread, draining each ready socket
// with non-blocking ReadBatch calls: no goroutine per socket, no blocking
// reads that make the runtime start threads. Stop wakes it for good.
type Poller struct {
	ep     int
	wake   int
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
	return p, nil
}

// ErrStopped is returned by Wait after Stop.
var ErrStopped = errors.New("packetio: poller stopped")

// Wait blocks until a socket is readable and sets ready[i] for each
// readable socket i (in NewPoller's order).
func (p *Poller) Wait(ready []bool) error {
	for {
		n, err := unix.EpollWait(p.ep, p.events, -1)
		if errors.Is(err, unix.EINTR) {
			continue
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
	return unix.Close(p.ep)
}
