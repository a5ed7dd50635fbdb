package fwdbench

import (
	"fmt"
	"io"
	"net/netip"
	"runtime"
	"strings"

	"github.com/vishvananda/netns"

	"github.com/lvslab/lvslab/dataplane/engine"
)

// Ports the lab's virtual services listen on: iperf3 (TCP control and
// bulk, UDP datagrams) and nginx for new connections.
const (
	iperfPort = 5201
	httpPort  = 80
)

// engineRules are the ipvsadm-restore lines of the lab's virtual services:
// iperf3 over TCP and UDP and HTTP, each scheduled by rr onto the server
// with forwarding method ("-m" masquerading or "-g" direct routing).
func (l *Lab) engineRules(method string) string {
	var b strings.Builder
	for _, s := range []struct {
		proto string
		port  uint16
	}{{"-t", iperfPort}, {"-u", iperfPort}, {"-t", httpPort}} {
		vs := netip.AddrPortFrom(l.VIP, s.port)
		rs := netip.AddrPortFrom(l.ServerAddr, s.port)
		fmt.Fprintf(&b, "-A %s %s -s rr\n-a %s %s -r %s %s -w 1\n", s.proto, vs, s.proto, vs, rs, method)
	}
	return b.String()
}

// startEngine runs the director (dataplane/engine) in the lab's director
// namespace on both of its interfaces, with the lab's virtual services.
func (l *Lab) startEngine(method string) (*engine.Engine, error) {
	var e *engine.Engine
	err := inNetns(l.Director, func() (err error) {
		e, err = engine.Start(engine.Config{Interfaces: []string{DirClientIf, DirServerIf}})
		return err
	})
	if err != nil {
		return nil, err
	}
	var stderr strings.Builder
	if code := e.Ipvsadm([]string{"-R"}, strings.NewReader(l.engineRules(method)), io.Discard, &stderr); code != 0 {
		e.Close()
		return nil, fmt.Errorf("engine: ipvsadm -R exit status %d: %s", code, strings.TrimSpace(stderr.String()))
	}
	return e, nil
}

// inNetns calls fn on a thread switched into namespace name. What fn opens
// (sockets, netlink handles) stays in that namespace after it returns.
func inNetns(name string, fn func() error) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		return err
	}
	defer orig.Close()
	target, err := netns.GetFromPath(NetnsPath(name))
	if err != nil {
		return fmt.Errorf("netns %s: %w", name, err)
	}
	defer target.Close()
	if err := netns.Set(target); err != nil {
		return fmt.Errorf("netns %s: %w", name, err)
	}
	ferr := fn()
	if err := netns.Set(orig); err != nil {
		// The thread cannot go back: leave it locked so the runtime
		// ends it with this goroutine instead of reusing it.
		runtime.LockOSThread()
		return fmt.Errorf("netns back from %s: %w", name, err)
	}
	return ferr
}
