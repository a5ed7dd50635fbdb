package topo

import (
	"fmt"
	"net"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// WaitUp returns once every named link in the namespace ns is
// operationally up, or fails after timeout. A veth is up as soon as it is
// set so, but the kernel's link watcher, which runs asynchronously (up to a
// second later on a busy machine), attaches its queueing discipline; until
// then every frame sent on it is dropped. The watcher sets the operational
// state just before it attaches the qdisc, a gap far shorter than anything
// a caller does next. (The fabric's bulk wait, readyLinks, reads the qdisc
// itself from one dump for thousands of links.)
func WaitUp(ns netns.NsHandle, timeout time.Duration, names ...string) error {
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		return err
	}
	defer h.Close()
	deadline := time.Now().Add(timeout)
	pause := time.Millisecond
	for _, name := range names {
		for {
			l, err := h.LinkByName(name)
			if err != nil {
				return err
			}
			if a := l.Attrs(); a.OperState == netlink.OperUp && a.Flags&net.FlagRunning != 0 {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%s not operationally up after %v", name, timeout)
			}
			time.Sleep(pause)
			pause = min(2*pause, 50*time.Millisecond)
		}
	}
	return nil
}

// WaitUpNamed is WaitUp in the namespace named name (ip netns add name).
func WaitUpNamed(name string, timeout time.Duration, links ...string) error {
	ns, err := netns.GetFromName(name)
	if err != nil {
		return fmt.Errorf("netns %s: %w", name, err)
	}
	defer ns.Close()
	if err := WaitUp(ns, timeout, links...); err != nil {
		return fmt.Errorf("netns %s: %w", name, err)
	}
	return nil
}
