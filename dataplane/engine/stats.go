package engine

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"

	"golang.org/x/sys/unix"

	"github.com/lvslab/lvslab/dataplane/defrag"
	"github.com/lvslab/lvslab/dataplane/parse"
	"github.com/lvslab/lvslab/topo"
	"github.com/lvslab/lvslab/topo/agent"
)

// Stats is what a running director's engine reports about itself (the
// control socket's stats request, lvslab stats, the run report): its own
// counters, what became of the frames it received, and its packet sockets
// as the kernel counts them. IPVS's own counters (per service and real
// server) are ipvsadm's.
type Stats struct {
	Frames     uint64            `json:"frames"`       // frames received
	In         uint64            `json:"in"`           // packets forwarded to real servers
	Out        uint64            `json:"out"`          // replies forwarded to clients (NAT)
	ICMPIn     uint64            `json:"icmp_in"`      // related ICMP errors relayed towards real servers
	ICMPOut    uint64            `json:"icmp_out"`     // related ICMP errors relayed towards clients
	Replies    uint64            `json:"replies"`      // ICMP errors the director sent
	Segmented  uint64            `json:"segmented"`    // GSO packets split for a tunnel
	Fragmented uint64            `json:"fragmented"`   // packets sent in fragments
	Dropped    uint64            `json:"dropped"`      // packets to a virtual address no service took
	NoRoute    uint64            `json:"no_route"`     // packets without a route or a resolved next hop
	Unsendable uint64            `json:"unsendable"`   // packets a transmitter refused
	Queued     uint64            `json:"queued"`       // packets of fwmark services read from the netfilter queue
	QueueErrs  uint64            `json:"queue_errors"` // verdicts the kernel did not take
	Parse      map[string]uint64 `json:"parse"`        // frames by how they parsed: "ok" or the reason (non-zero only)
	Defrag     map[string]uint64 `json:"defrag"`       // reassembly of IPv4 fragments (non-zero only)
	Interfaces []InterfaceStats  `json:"interfaces"`
}

// InterfaceStats are the engine's packet sockets on one interface, summed
// over its workers.
type InterfaceStats struct {
	Name      string `json:"name"`
	Packets   uint64 `json:"packets"`     // frames the kernel passed to the sockets (tp_packets)
	Drops     uint64 `json:"drops"`       // frames the kernel dropped for want of room in them (tp_drops)
	Truncated uint64 `json:"truncated"`   // frames larger than a receive buffer
	SendErrs  uint64 `json:"send_errors"` // frames the kernel refused to send
}

// Counters returns the engine's own counters by their JSON names.
func (s *Stats) Counters() map[string]uint64 {
	return map[string]uint64{"frames": s.Frames, "in": s.In, "out": s.Out, "icmp_in": s.ICMPIn, "icmp_out": s.ICMPOut,
		"replies": s.Replies, "segmented": s.Segmented, "fragmented": s.Fragmented, "queued": s.Queued}
}

// Drops returns every count of packets the director did not forward, by
// reason: "parse.REASON" for malformed frames the kernel drops too,
// "defrag.REASON" for fragments or datagrams reassembly gave up on,
// "dropped", "no_route", "unsendable", "queue_errors" (verdicts the kernel
// did not take), and "socket.IFACE" for frames the kernel dropped before
// the engine could read them. Zero counts are left out.
func (s *Stats) Drops() map[string]uint64 {
	m := map[string]uint64{}
	for name, n := range s.Parse {
		if r, ok := parseReason(name); ok && r.Drop() {
			m["parse."+name] = n
		}
	}
	for name, n := range s.Defrag {
		if r, ok := defragReason(name); ok && r != defrag.Requests && r != defrag.Reassembled {
			m["defrag."+name] = n
		}
	}
	for name, n := range map[string]uint64{"dropped": s.Dropped, "no_route": s.NoRoute, "unsendable": s.Unsendable, "queue_errors": s.QueueErrs} {
		m[name] = n
	}
	for _, ifc := range s.Interfaces {
		m["socket."+ifc.Name] = ifc.Drops
	}
	maps.DeleteFunc(m, func(_ string, n uint64) bool { return n == 0 })
	return m
}

func parseReason(name string) (parse.Reason, bool) {
	for r := range parse.NumReasons {
		if r.String() == name {
			return r, true
		}
	}
	return 0, false
}

func defragReason(name string) (defrag.Reason, bool) {
	for r := range defrag.NumReasons {
		if r.String() == name {
			return r, true
		}
	}
	return 0, false
}

// Stats returns the engine's statistics. Reading the kernel's packet
// socket statistics resets them, so the engine keeps their sums.
func (e *Engine) Stats() Stats {
	c := e.Counters()
	s := Stats{Frames: c.Frames, In: c.In, Out: c.Out, ICMPIn: c.ICMPIn, ICMPOut: c.ICMPOut, Replies: c.Replies,
		Segmented: c.Segmented, Fragmented: c.Fragmented, Dropped: c.Dropped, NoRoute: c.NoRoute, Unsendable: c.Unsendable,
		Queued: c.Queued, QueueErrs: c.QueueErrs, Parse: map[string]uint64{}, Defrag: c.Defrag.Map()}
	for r, n := range c.Reasons {
		if n > 0 {
			s.Parse[parse.Reason(r).String()] = n
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.sockets == nil {
		e.sockets = make([]unix.TpacketStats, len(e.ifs))
	}
	for _, w := range e.workers {
		for i, sock := range w.socks {
			if sock == nil {
				continue
			}
			// An error means the socket is closing: nothing more to add.
			if ts, err := unix.GetsockoptTpacketStats(sock.Fd(), unix.SOL_PACKET, unix.PACKET_STATISTICS); err == nil {
				e.sockets[i].Packets += ts.Packets
				e.sockets[i].Drops += ts.Drops
			}
		}
	}
	for i, ifc := range e.ifs {
		is := InterfaceStats{Name: ifc.name, Packets: uint64(e.sockets[i].Packets), Drops: uint64(e.sockets[i].Drops)}
		if i < len(c.Socket) {
			is.Truncated, is.SendErrs = c.Socket[i].Truncated, c.Socket[i].SendErrs
		}
		s.Interfaces = append(s.Interfaces, is)
	}
	return s
}

// DirectorSocket finds the control socket of a running director of the
// ErrSeveralDirectors is DirectorSocket's error for a lab with several
// running directors and none named.
var ErrSeveralDirectors = errors.New("the lab has several directors")

// lab in runDir: node's, or the only one's when node is empty.
func DirectorSocket(runDir, lab, node string) (socket, director string, err error) {
	info, err := topo.Find(runDir, lab)
	if err != nil {
		return "", "", err
	}
	if node == "" {
		var running []string
		for _, a := range info.Agents {
			if a.Kind == AgentKind && a.Alive && !slices.Contains(running, a.Node) {
				running = append(running, a.Node)
			}
		}
		switch len(running) {
		case 0:
			return "", "", fmt.Errorf("lab %s has no running director", info.ID)
		case 1:
			node = running[0]
		default:
			return "", "", fmt.Errorf("%w (%s); name one", ErrSeveralDirectors, strings.Join(running, ", "))
		}
	}
	return agent.SocketPath(info.Dir, node, AgentKind), node, nil
}

// WriteText prints the statistics as tables: the engine's counters, the
// frames by how they parsed, the reassembly counters, every drop by
// reason, and the packet sockets per interface.
func (s *Stats) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ENGINE\tCOUNT")
	for _, row := range []struct {
		name string
		n    uint64
	}{
		{"frames received", s.Frames}, {"forwarded to real servers", s.In}, {"replies to clients", s.Out},
		{"icmp relayed in", s.ICMPIn}, {"icmp relayed out", s.ICMPOut}, {"icmp errors sent", s.Replies},
		{"gso packets segmented", s.Segmented}, {"packets fragmented", s.Fragmented},
	} {
		fmt.Fprintf(tw, "%s\t%d\n", row.name, row.n)
	}
	table := func(title string, m map[string]uint64) {
		fmt.Fprintf(tw, "\n%s\tCOUNT\n", title)
		if len(m) == 0 {
			fmt.Fprintln(tw, "(none)\t")
		}
		for _, k := range slices.Sorted(maps.Keys(m)) {
			fmt.Fprintf(tw, "%s\t%d\n", k, m[k])
		}
	}
	table("PARSED", s.Parse)
	table("REASSEMBLY", s.Defrag)
	table("DROPPED", s.Drops())
	fmt.Fprintln(tw, "\nINTERFACE\tPACKETS\tDROPS\tTRUNCATED\tSEND ERRORS")
	for _, ifc := range s.Interfaces {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\n", ifc.Name, ifc.Packets, ifc.Drops, ifc.Truncated, ifc.SendErrs)
	}
	return tw.Flush()
}
