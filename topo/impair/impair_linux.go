package impair

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/lvslab/lvslab/topo"
)

// Mechanisms of a delay (topo.Features.DelayMechanism).
const (
	Netem     = "netem"
	Userspace = "userspace"
)

// NetemHandle is the handle of the root netem qdisc a delay installs; a
// rate limit on the same interface goes beneath it, at NetemChild.
var NetemHandle = netlink.MakeHandle(1, 0)

// NetemChild is the netem qdisc's class, as tc writes it.
const NetemChild = "1:1"

// NetemQdisc is the qdisc a delay puts at the root of one end of a link:
// netem's own tfifo queue holds cfg.Limit packets, as the userspace line.
// netem always lets a packet that drew a shorter delay overtake (Reorder);
// its jitter comes from the kernel's random source, not cfg.Seed.
func NetemQdisc(linkIndex int, cfg Config) *netlink.Netem {
	return netlink.NewNetem(
		netlink.QdiscAttrs{LinkIndex: linkIndex, Parent: netlink.HANDLE_ROOT, Handle: NetemHandle},
		netlink.NetemQdiscAttrs{
			Latency: uint32(cfg.Delay.Microseconds()),
			Jitter:  uint32(cfg.Jitter.Microseconds()),
			Limit:   uint32(cfg.limit()),
		})
}

// Impairment is a delay on every link of one node, from Start to Stop.
type Impairment struct {
	in     *topo.Instance
	node   string
	cfg    Config
	mech   string
	ports  []topo.FabricPort
	relays []*spliced // userspace: one per interface
	netem  []netemAt  // netem: both ends of each interface
}

type spliced struct {
	port   topo.FabricPort
	pair   string // the pair's bridge end
	relay  string // the pair's other end, the relay's
	agent  *topo.Agent
	stats  string
	onPair bool // the pair exists
	off    bool // the node's port is off its bridge
}

type netemAt struct {
	ns    string // topo.FabricNode or the node
	index int
}

// PairNames names the veth pair spliced into a node's interface: the
// bridge end and the relay's end. Each is the lab ID, "p" or "r" (never a
// hex digit, so never a node's fabric port), the node index in hex, "."
// and the interface index: at most 15 bytes.
func PairNames(labID string, port topo.FabricPort) (bridgeEnd, relayEnd string) {
	tail := fmt.Sprintf("%x.%d", port.NodeIndex, port.Interface)
	return labID + "p" + tail, labID + "r" + tail
}

// Start delays every link of node by cfg, with netem where the lab's
// kernel has it and the userspace relay elsewhere. On error nothing of it
// is left.
func Start(in *topo.Instance, node string, cfg Config) (*Impairment, error) {
	ports, err := in.FabricPorts(node)
	if err != nil {
		return nil, err
	}
	im := &Impairment{in: in, node: node, cfg: cfg, mech: in.Features.DelayMechanism(), ports: ports}
	if im.mech == Netem {
		err = im.startNetem()
	} else {
		err = im.startUserspace()
	}
	if err != nil {
		_, serr := im.Stop()
		return nil, errors.Join(fmt.Errorf("delay on %s: %w", node, err), serr)
	}
	return im, nil
}

// Mechanism says what delays the links: Netem or Userspace.
func (im *Impairment) Mechanism() string { return im.mech }

func (im *Impairment) startNetem() error {
	for _, p := range im.ports {
		for _, at := range []struct {
			ns   string
			name string
		}{{im.node, p.IfName}, {topo.FabricNode, p.Port}} {
			err := im.in.Do(at.ns, func() error {
				link, err := netlink.LinkByName(at.name)
				if err != nil {
					return err
				}
				if err := netlink.QdiscReplace(NetemQdisc(link.Attrs().Index, im.cfg)); err != nil {
					return fmt.Errorf("netem on %s: %w", at.name, err)
				}
				im.netem = append(im.netem, netemAt{at.ns, link.Attrs().Index})
				return nil
			})
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// PairUpTimeout bounds the wait for a new pair to carry frames.
var PairUpTimeout = 5 * time.Second

func (im *Impairment) startUserspace() error {
	fabric, err := im.in.NetNS(topo.FabricNode)
	if err != nil {
		return err
	}
	h, err := netlink.NewHandleAt(netns.NsHandle(fabric.Fd()), unix.NETLINK_ROUTE)
	if err != nil {
		return err
	}
	defer h.Close()
	dir := filepath.Join(im.in.Dir, "impair")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	for i, p := range im.ports {
		s := &spliced{port: p}
		s.pair, s.relay = PairNames(im.in.ID, p)
		s.stats = filepath.Join(dir, s.pair+".json")
		im.relays = append(im.relays, s)
		attrs := netlink.NewLinkAttrs()
		attrs.Name, attrs.MTU, attrs.Group, attrs.MasterIndex = s.pair, p.MTU, topo.VethGroup, p.Bridge
		attrs.Flags = net.FlagUp
		if err := h.LinkAdd(&netlink.Veth{LinkAttrs: attrs, PeerName: s.relay, PeerMTU: uint32(p.MTU)}); err != nil {
			return fmt.Errorf("%s: veth pair %s: %w", p.IfName, s.pair, err)
		}
		s.onPair = true
		relay, err := h.LinkByName(s.relay)
		if err == nil {
			err = h.LinkSetUp(relay)
		}
		if err == nil {
			err = topo.WaitUp(netns.NsHandle(fabric.Fd()), PairUpTimeout, s.pair, s.relay)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", p.IfName, err)
		}
		c := im.cfg
		c.Seed += uint64(i) // each interface its own jitter
		if s.agent, err = im.in.StartAgent(topo.FabricNode, AgentKind, relayArgs(p.Port, s.relay, s.stats, c)...); err != nil {
			return fmt.Errorf("%s: %w", p.IfName, err)
		}
		port := &netlink.Device{LinkAttrs: netlink.LinkAttrs{Index: p.PortIndex, Name: p.Port}}
		if err := h.LinkSetNoMaster(port); err != nil {
			return fmt.Errorf("%s: taking %s off its bridge: %w", p.IfName, p.Port, err)
		}
		s.off = true
	}
	return nil
}

// Stats returns what the relays did so far (zero with netem, whose
// queue is the kernel's).
func (im *Impairment) Stats() Stats {
	var sum Stats
	for _, s := range im.relays {
		if st, err := readStats(s.stats); err == nil {
			sum.add(st)
		}
	}
	return sum
}

func (s *Stats) add(o Stats) {
	for _, d := range []struct{ to, from *LineStats }{{&s.FromNode, &o.FromNode}, {&s.ToNode, &o.ToNode}} {
		d.to.Frames += d.from.Frames
		d.to.Bytes += d.from.Bytes
		d.to.Dropped += d.from.Dropped
		d.to.MaxQueued = max(d.to.MaxQueued, d.from.MaxQueued)
		d.to.MaxFrame = max(d.to.MaxFrame, d.from.MaxFrame)
	}
	s.Socket.Truncated += o.Socket.Truncated
	s.Socket.Outgoing += o.Socket.Outgoing
	s.Socket.SendErrs += o.Socket.SendErrs
	s.CPUSeconds += o.CPUSeconds
}

// relayGrace is how long a relay may take to send what waits and exit.
const relayGrace = 2 * time.Second

// Stop ends the delay: each node port rejoins its bridge, then its relay
// sends what still waits and exits, then its pair goes (the bridge forgets
// the MACs it learned there); or the netem qdiscs go. It returns what the
// relays did. The order trades a loss for a duplicate: until the relay
// has exited, the node's frames cross both ways (the bridge, and a
// delayed copy from the relay), which TCP shrugs off, where the opposite
// order would drop everything for as long as a process takes to exit,
// and lost SYNs cost a second each. Stop undoes whatever part of Start
// happened, so Start uses it to clean up after an error.
func (im *Impairment) Stop() (Stats, error) {
	var errs []error
	for _, at := range im.netem {
		errs = append(errs, im.in.Do(at.ns, func() error {
			err := netlink.QdiscDel(&netlink.Netem{QdiscAttrs: netlink.QdiscAttrs{LinkIndex: at.index, Parent: netlink.HANDLE_ROOT, Handle: NetemHandle}})
			if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.EINVAL) {
				return nil // already gone (a rate limit's removal took it along)
			}
			return err
		}))
	}
	im.netem = nil
	if len(im.relays) == 0 {
		return Stats{}, errors.Join(errs...)
	}
	fabric, err := im.in.NetNS(topo.FabricNode)
	if err != nil {
		return Stats{}, errors.Join(append(errs, err)...)
	}
	h, err := netlink.NewHandleAt(netns.NsHandle(fabric.Fd()), unix.NETLINK_ROUTE)
	if err != nil {
		return Stats{}, errors.Join(append(errs, err)...)
	}
	defer h.Close()
	for _, s := range im.relays {
		if s.off {
			port := &netlink.Device{LinkAttrs: netlink.LinkAttrs{Index: s.port.PortIndex, Name: s.port.Port}}
			if err := h.LinkSetMasterByIndex(port, s.port.Bridge); err != nil {
				errs = append(errs, fmt.Errorf("%s back on its bridge: %w", s.port.Port, err))
			}
		}
	}
	for _, s := range im.relays {
		if s.agent != nil {
			errs = append(errs, s.agent.Stop(relayGrace))
		}
	}
	stats := im.Stats()
	for _, s := range im.relays {
		if s.onPair {
			if l, err := h.LinkByName(s.pair); err == nil {
				errs = append(errs, h.LinkDel(l))
			} else {
				errs = append(errs, err)
			}
		}
		os.Remove(s.stats)
	}
	im.relays = nil
	return stats, errors.Join(errs...)
}
