package packetio

import (
	"errors"
	"fmt"
	"net"
)

// Port is an interface the director forwards on, and which end of its
// connections faces it (for the fanout hash).
type Port struct {
	Ifname string
	Side   Side
}

// Socket is what OpenWorkers opens on each port: an AFPacket, or a Ring
// when receive rings were asked for.
type Socket interface {
	ReadBatch(pkts []Packet) (int, error)
	WriteBatch(pkts []Packet) (int, error)
	Close() error
	Fd() int
	Counters() Stats
}

// Counters returns the socket's own drop counters.
func (s *AFPacket) Counters() Stats { return s.Stats }

// Worker is one forwarding thread's share of the interfaces: a socket per
// port (in ports' order) and a poller over them.
type Worker struct {
	Sockets []Socket
	Poller  *Poller
}

// FanoutBase is the first fanout group id OpenWorkers uses (one per port).
const FanoutBase = 0x4c00

// OpenWorkers opens, in the calling thread's network namespace, one socket
// per port for each of workers workers. With more than one worker each
// port's sockets form a fanout group that hashes the client endpoint, so a
// connection's packets in both directions meet in one worker. ring selects
// TPACKET_V2 receive rings over recvmmsg. On error nothing stays open.
func OpenWorkers(ports []Port, workers, batch int, cfg Config, ring bool) (ws []Worker, err error) {
	defer func() {
		if err != nil {
			CloseWorkers(ws)
			ws = nil
		}
	}()
	for range workers {
		var w Worker
		ws = append(ws, w)
		cur := &ws[len(ws)-1]
		fds := make([]int, 0, len(ports))
		for i, p := range ports {
			ifi, err := net.InterfaceByName(p.Ifname)
			if err != nil {
				return ws, fmt.Errorf("packetio: interface %q: %w", p.Ifname, err)
			}
			c := cfg
			if workers > 1 {
				c.Fanout = &Fanout{ID: uint16(FanoutBase + i), Side: p.Side, Workers: workers}
			}
			var s Socket
			if ring {
				s, err = OpenRing(ifi.Index, batch, c)
			} else {
				s, err = Open(ifi.Index, batch, c)
			}
			if err != nil {
				return ws, fmt.Errorf("%s: %w", p.Ifname, err)
			}
			cur.Sockets = append(cur.Sockets, s)
			fds = append(fds, s.Fd())
		}
		if cur.Poller, err = NewPoller(fds...); err != nil {
			return ws, err
		}
	}
	return ws, nil
}

// CloseWorkers closes every socket and poller of ws.
func CloseWorkers(ws []Worker) error {
	var errs []error
	for _, w := range ws {
		if w.Poller != nil {
			errs = append(errs, w.Poller.Close())
		}
		for _, s := range w.Sockets {
			errs = append(errs, s.Close())
		}
	}
	return errors.Join(errs...)
}
