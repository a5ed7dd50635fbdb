package fwdbench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"

	"github.com/containernetworking/plugins/pkg/ns"

	"github.com/lvslab/lvslab/dataplane/engine"
	"github.com/lvslab/lvslab/topo/ipipd"
)

// Ports the lab's virtual services listen on: iperf3 (TCP control and
// bulk, UDP datagrams) and nginx for new connections.
const (
	iperfPort = 5201
	httpPort  = 80
)

// engineRules are the ipvsadm-restore lines of the lab's virtual services:
// iperf3 over TCP and UDP and HTTP, each scheduled by rr onto the server
// with forwarding method ("-m" masquerading, "-g" direct routing, "-i"
// tunnelling).
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
// namespace on both of its interfaces, with the lab's virtual services and
// workers packet workers.
func (l *Lab) startEngine(method string, workers int) (*engine.Engine, error) {
	var e *engine.Engine
	err := inNetns(l.Director, func() (err error) {
		e, err = engine.Start(engine.Config{Interfaces: []string{DirClientIf, DirServerIf}, Workers: workers})
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
	n, err := ns.GetNS(NetnsPath(name))
	if err != nil {
		return fmt.Errorf("netns %s: %w", name, err)
	}
	defer n.Close()
	return n.Do(func(ns.NetNS) error { return fn() })
}

// decapTun is the TUN device the lab's server takes IPIP payloads in by.
const decapTun = "lvsipip0"

// decap is the server's userspace IPIP decapsulator (topo/ipipd): kernels
// without the ipip driver cannot be TUN real servers otherwise, and with it
// the kernel would consume the packets first — the same path either way.
// It runs in this process, so a TUN row's forwarder CPU includes it.
type decap struct {
	d      *ipipd.Decapsulator
	cancel context.CancelFunc
	done   chan struct{}
	lab    *Lab
}

// startDecap opens the decapsulator in the server namespace and keeps the
// server's kernel off IPIP packets (it would answer protocol unreachable).
func (l *Lab) startDecap() (*decap, error) {
	if err := Nft(l.Server, fmt.Sprintf("table netdev lvsipip {\n\tchain in { type filter hook ingress device %s priority 0; ip protocol 4 drop; }\n}\n", ServerIf)); err != nil {
		return nil, err
	}
	x := &decap{lab: l, done: make(chan struct{})}
	if err := inNetns(l.Server, func() (err error) { x.d, err = ipipd.Open(decapTun); return err }); err != nil {
		x.stopNft()
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	x.cancel = cancel
	go func() {
		defer close(x.done)
		x.d.Serve(ctx)
	}()
	return x, nil
}

// Stop ends the decapsulator (its TUN device goes with it).
func (x *decap) Stop() error {
	x.cancel()
	<-x.done
	err := x.d.Close()
	return errors.Join(err, x.stopNft())
}

func (x *decap) stopNft() error {
	return run("ip", "netns", "exec", x.lab.Server, "nft", "delete", "table", "netdev", "lvsipip")
}
