package fwdbench

import (
	"errors"
	"fmt"
	"net/netip"
	"sync"

	"github.com/containernetworking/plugins/pkg/ns"
	"golang.org/x/sys/unix"

	"github.com/lvslab/lvslab/dataplane/header"
	"github.com/lvslab/lvslab/dataplane/packetio"
	"github.com/lvslab/lvslab/dataplane/parse"
	"github.com/lvslab/lvslab/dataplane/xmit"
)

// PacketIO is what the forwarder needs from a packet backend: a batch in,
// a batch out, close. packetio.AFPacket implements it.
type PacketIO interface {
	ReadBatch(pkts []packetio.Packet) (int, error)
	WriteBatch(pkts []packetio.Packet) (int, error)
	Close() error
}

// NATConfig is the forwarder's one mapping and its neighbours: packets to
// VIP (any TCP/UDP/SCTP port) go to RIP on the same port, and replies from
// RIP leave as VIP.
type NATConfig struct {
	Netns        string // path of the director's network namespace
	ClientIf     string
	ServerIf     string
	VIP, RIP     netip.Addr
	ClientMAC    header.MAC // next hop towards the clients
	ServerMAC    header.MAC // the real server
	DirClientMAC header.MAC // the director's own interfaces
	DirServMAC   header.MAC
	MTU          int // route MTU towards the server
	Workers      int
	Batch        int
	// Ring receives through a TPACKET_V2 ring instead of recvmmsg.
	Ring bool
	// DR forwards by direct routing instead of NAT: only the destination
	// MAC changes. The lab's server replies through the director's
	// interfaces anyway, so replies from the VIP are routed back unchanged
	// (a router's work, not the director's).
	DR bool
	// Observe, if set, is told which worker saw which client endpoint on
	// which side (tests check fanout with it).
	Observe func(worker int, side packetio.Side, client netip.AddrPort)
}

// WorkerStats counts one worker's packets.
type WorkerStats struct {
	In, Out        uint64 // packets client→server, server→client forwarded
	Replies        uint64 // ICMP errors the director sent
	GSO            uint64 // GSO super-packets forwarded whole
	ChecksumPartly uint64 // CHECKSUM_PARTIAL packets
	MaxFrame       int    // largest frame seen
	Reasons        parse.Counters
	Socket         [2]packetio.Stats
}

// NAT is a running forwarder.
type NAT struct {
	cfg     NATConfig
	workers []*worker
	sockets []packetio.Worker
	wg      sync.WaitGroup
}

type worker struct {
	id     int
	cfg    *NATConfig
	io     [2]PacketIO // client side, server side
	poller *packetio.Poller
	rx     []packetio.Packet
	out    [2][]packetio.Packet
	reply  []packetio.Packet
	stats  WorkerStats
	err    error
}

// StartNAT opens the sockets inside cfg.Netns and starts the workers, each
// on its own OS thread with one epoll loop over its two sockets.
func StartNAT(cfg NATConfig) (*NAT, error) {
	if cfg.Workers <= 0 {
		cfg.Workers = 1
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 64
	}
	n := &NAT{cfg: cfg}
	target, err := ns.GetNS(cfg.Netns)
	if err != nil {
		return nil, err
	}
	defer target.Close()
	err = target.Do(func(ns.NetNS) (err error) {
		ports := []packetio.Port{{Ifname: cfg.ClientIf, Side: packetio.ClientSide}, {Ifname: cfg.ServerIf, Side: packetio.ServerSide}}
		n.sockets, err = packetio.OpenWorkers(ports, cfg.Workers, cfg.Batch, packetio.Config{Vnet: true, QdiscBypass: true, BufferBytes: 4 << 20}, cfg.Ring)
		return err
	})
	if err != nil {
		return nil, err
	}
	for i, pw := range n.sockets {
		w := &worker{id: i, cfg: &n.cfg, poller: pw.Poller, io: [2]PacketIO{pw.Sockets[0], pw.Sockets[1]}}
		if cfg.Ring {
			w.rx = make([]packetio.Packet, cfg.Batch) // frames stay in the ring
		} else {
			w.rx = packetio.NewBatch(cfg.Batch)
		}
		w.out[0] = make([]packetio.Packet, 0, cfg.Batch)
		w.out[1] = make([]packetio.Packet, 0, cfg.Batch)
		w.reply = make([]packetio.Packet, cfg.Batch)
		for i := range w.reply {
			w.reply[i].Buf = make([]byte, header.EthernetSize+header.ICMPv6ErrorMaxSize)
		}
		n.workers = append(n.workers, w)
	}
	for _, w := range n.workers {
		n.wg.Add(1)
		go func() {
			defer n.wg.Done()
			w.err = w.loop()
		}()
	}
	return n, nil
}

// Stop stops the workers, closes the sockets and returns each worker's
// counters.
func (n *NAT) Stop() ([]WorkerStats, error) {
	for _, w := range n.workers {
		w.poller.Stop()
	}
	n.wg.Wait()
	var errs []error
	stats := make([]WorkerStats, len(n.workers))
	for i, w := range n.workers {
		if w.err != nil && !errors.Is(w.err, packetio.ErrStopped) {
			errs = append(errs, fmt.Errorf("worker %d: %w", i, w.err))
		}
		stats[i] = w.stats
		for s, sock := range n.sockets[i].Sockets {
			stats[i].Socket[s] = sock.Counters()
		}
	}
	n.close()
	return stats, errors.Join(errs...)
}

func (n *NAT) close() { packetio.CloseWorkers(n.sockets) }

func (w *worker) loop() error {
	ready := make([]bool, 2)
	for {
		if err := w.poller.Wait(ready); err != nil {
			return err
		}
		for side := range 2 {
			if !ready[side] {
				continue
			}
			for {
				n, err := w.io[side].ReadBatch(w.rx)
				if err != nil {
					return err
				}
				if n == 0 {
					break
				}
				w.forward(packetio.Side(side), w.rx[:n])
				if err := w.flush(); err != nil {
					return err
				}
				if n < len(w.rx) {
					break
				}
			}
		}
	}
}

func (w *worker) flush() error {
	for side := range 2 {
		if len(w.out[side]) > 0 {
			if _, err := w.io[side].WriteBatch(w.out[side]); err != nil {
				return err
			}
			w.out[side] = w.out[side][:0]
		}
	}
	return nil
}

// forward rewrites a batch read on side and queues what goes out.
func (w *worker) forward(side packetio.Side, pkts []packetio.Packet) {
	cfg := w.cfg
	hop := xmit.Hop{MTU: cfg.MTU}
	nreply := 0
	var p parse.Packet
	for i := range pkts {
		pk := &pkts[i]
		if pk.PktType == unix.PACKET_OTHERHOST { // not addressed to the director
			continue
		}
		frame, vnet := pk.Frame(), pk.VnetHdr()
		w.stats.MaxFrame = max(w.stats.MaxFrame, len(frame))
		r := parse.Frame(frame, vnet, &p)
		w.stats.Reasons.Add(r)
		if r != parse.OK || p.Kind == parse.KindOther {
			continue
		}
		if side == packetio.ClientSide {
			if p.Dst != cfg.VIP {
				continue
			}
			v, n := hop.Check(w.reply[nreply].Buf, frame, vnet, &p)
			switch v {
			case xmit.Reply:
				w.reply[nreply].Off, w.reply[nreply].Len = 0, n
				w.reply[nreply].Vnet = [header.VirtioNetHdrSize]byte{}
				w.out[packetio.ClientSide] = append(w.out[packetio.ClientSide], w.reply[nreply])
				nreply++
				w.stats.Replies++
				continue
			case xmit.Forward:
			default:
				continue // no fragmentation in this instrument
			}
			if cfg.Observe != nil && p.Kind == parse.KindTransport {
				cfg.Observe(w.id, side, netip.AddrPortFrom(p.Src, p.SrcPort))
			}
			switch {
			case cfg.DR:
				xmit.DR(frame, cfg.DirServMAC, cfg.ServerMAC)
			case p.Kind == parse.KindICMPError:
				xmit.NATICMPIn(frame, &p, cfg.RIP, p.Inner.SrcPort)
			default:
				xmit.NATIn(frame, vnet, &p, cfg.RIP, p.DstPort)
			}
			xmit.SetLink(frame, cfg.DirServMAC, cfg.ServerMAC)
			w.queue(packetio.ServerSide, pk, vnet)
			w.stats.In++
			continue
		}
		from := cfg.RIP
		if cfg.DR {
			from = cfg.VIP
		}
		if p.Src != from {
			continue
		}
		if cfg.Observe != nil && p.Kind == parse.KindTransport {
			cfg.Observe(w.id, side, netip.AddrPortFrom(p.Dst, p.DstPort))
		}
		switch {
		case cfg.DR:
		case p.Kind == parse.KindICMPError:
			xmit.NATICMPOut(frame, &p, cfg.VIP, p.Inner.DstPort)
		default:
			xmit.NATOut(frame, vnet, &p, cfg.VIP, p.SrcPort)
		}
		if p.IsIPv4() { // the kernel forwards NAT replies: TTL − 1
			header.IPv4(frame[p.L3Off:]).DecrementTTL()
		} else {
			header.IPv6(frame[p.L3Off:]).SetHopLimit(p.TTL - 1)
		}
		xmit.SetLink(frame, cfg.DirClientMAC, cfg.ClientMAC)
		w.queue(packetio.ClientSide, pk, vnet)
		w.stats.Out++
	}
}

func (w *worker) queue(side packetio.Side, pk *packetio.Packet, vnet header.VirtioNetHdr) {
	if vnet.IsGSO() {
		w.stats.GSO++
	}
	if vnet.NeedsCsum() {
		w.stats.ChecksumPartly++
	}
	w.out[side] = append(w.out[side], *pk)
}
