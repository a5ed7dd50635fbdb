package impair

import (
	"errors"
	"fmt"
	"net"
	"runtime"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/lvslab/lvslab/dataplane/packetio"
)

// Relay moves frames both ways between two interfaces of one namespace,
// each direction through its own Line: frames read on the node side wait
// in Lines[ToNetwork] and leave on the network side, and back.
type Relay struct {
	sock  [2]*packetio.AFPacket // by Side
	lines [2]*Line              // by the side frames arrive on
	poll  *packetio.Poller
	timer int   // timerfd (CLOCK_MONOTONIC)
	armed int64 // when the timer fires; 0: disarmed
	in    []packetio.Packet
	out   []packetio.Packet

	mu    sync.Mutex
	stats Stats
	cpu   float64 // seconds, set when Run ends
}

// Side is one of the relay's two interfaces.
type Side int

const (
	NodeSide    Side = iota // the node's fabric port: frames the node sent
	NetworkSide             // the free end of the pair on the bridge
)

// Stats is what a relay did in each direction.
type Stats struct {
	FromNode LineStats `json:"from_node"` // the node's frames, toward its network
	ToNode   LineStats `json:"to_node"`
	// Socket counts frames the sockets themselves lost.
	Socket packetio.Stats `json:"socket"`
	// CPUSeconds is the relay thread's CPU time (user and system), known
	// once it stopped.
	CPUSeconds float64 `json:"cpu_s,omitempty"`
}

// relayBatch is how many frames one recvmmsg or sendmmsg moves.
const relayBatch = 32

// socketBuffer holds bursts of 64 KB GSO frames while the relay sleeps.
const socketBuffer = 8 << 20

// OpenRelay opens the relay's sockets on the interfaces nodeSide and
// networkSide of the calling thread's namespace.
func OpenRelay(nodeSide, networkSide string, cfg Config) (r *Relay, err error) {
	r = &Relay{timer: -1,
		lines: [2]*Line{NewLine(cfg, cfg.Seed), NewLine(cfg, cfg.Seed^0x5eed)},
		in:    packetio.NewBatch(relayBatch), out: make([]packetio.Packet, relayBatch)}
	defer func() {
		if err != nil {
			r.Close()
		}
	}()
	pcfg := packetio.Config{Vnet: true, QdiscBypass: true, BufferBytes: socketBuffer}
	for side, name := range [2]string{nodeSide, networkSide} {
		ifi, err := net.InterfaceByName(name)
		if err != nil {
			return r, fmt.Errorf("impair: %w", err)
		}
		if r.sock[side], err = packetio.Open(ifi.Index, relayBatch, pcfg); err != nil {
			return r, fmt.Errorf("impair: %s: %w", name, err)
		}
	}
	if r.timer, err = unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC); err != nil {
		return r, fmt.Errorf("impair: timerfd: %w", err)
	}
	if r.poll, err = packetio.NewPoller(r.sock[0].Fd(), r.sock[1].Fd(), r.timer); err != nil {
		return r, err
	}
	return r, nil
}

// Run relays until Stop, then sends what still waits and returns. It runs
// on one locked thread: one poll loop, no goroutine per socket.
func (r *Relay) Run() error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	start := threadCPU()
	ready := make([]bool, 3)
	for {
		err := r.poll.Wait(ready)
		if errors.Is(err, packetio.ErrStopped) {
			err = r.flush()
			r.mu.Lock()
			r.cpu = threadCPU() - start
			r.stats.CPUSeconds = r.cpu
			r.mu.Unlock()
			return err
		}
		if err != nil {
			return err
		}
		now := monotonic()
		for side := range r.sock {
			if ready[side] {
				if err := r.receive(Side(side), now); err != nil {
					return err
				}
			}
		}
		if ready[2] {
			var b [8]byte
			unix.Read(r.timer, b[:]) // clear the expiry
			r.armed = 0              // and set it again below
		}
		if err := r.release(now); err != nil {
			return err
		}
		if err := r.arm(); err != nil {
			return err
		}
		r.publish()
	}
}

// Stop makes Run send what waits and return.
func (r *Relay) Stop() { r.poll.Stop() }

// Stats returns the counters as of the relay's last wake-up.
func (r *Relay) Stats() Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stats
}

func (r *Relay) publish() {
	r.mu.Lock()
	r.stats = Stats{FromNode: r.lines[NodeSide].Stats, ToNode: r.lines[NetworkSide].Stats, CPUSeconds: r.cpu}
	for _, s := range r.sock {
		r.stats.Socket.Truncated += s.Stats.Truncated
		r.stats.Socket.Outgoing += s.Stats.Outgoing
		r.stats.Socket.SendErrs += s.Stats.SendErrs
	}
	r.mu.Unlock()
}

// receive queues one batch of the frames waiting on side.
func (r *Relay) receive(side Side, now int64) error {
	n, err := r.sock[side].ReadBatch(r.in)
	if err != nil {
		return err
	}
	line := r.lines[side]
	for i := range r.in[:n] {
		p := &r.in[i]
		line.Push(p.Frame(), &p.Vnet, now)
	}
	return nil
}

// release sends every frame due by now out of the other side.
func (r *Relay) release(now int64) error {
	for side, line := range r.lines {
		for {
			k := line.Release(now, r.out)
			if k == 0 {
				break
			}
			if _, err := r.sock[1-side].WriteBatch(r.out[:k]); err != nil {
				return err
			}
		}
	}
	return nil
}

// arm sets the timer to the next frame due (or disarms it), unless it is
// set so already.
func (r *Relay) arm() error {
	next := int64(0)
	for _, line := range r.lines {
		if at, has := line.Next(); has && (next == 0 || at < next) {
			next = max(at, 1)
		}
	}
	if next == r.armed {
		return nil
	}
	var spec unix.ItimerSpec
	if next != 0 {
		spec.Value = unix.NsecToTimespec(next)
	}
	if err := unix.TimerfdSettime(r.timer, unix.TFD_TIMER_ABSTIME, &spec, nil); err != nil {
		return fmt.Errorf("impair: timerfd_settime: %w", err)
	}
	r.armed = next
	return nil
}

func (r *Relay) flush() error {
	var errs []error
	for side, line := range r.lines {
		for k := line.Flush(r.out); k > 0; k = line.Flush(r.out) {
			if _, err := r.sock[1-side].WriteBatch(r.out[:k]); err != nil {
				errs = append(errs, err)
				break
			}
		}
	}
	r.publish()
	return errors.Join(errs...)
}

// Close releases the sockets, the poller and the timer.
func (r *Relay) Close() error {
	var errs []error
	if r.poll != nil {
		errs = append(errs, r.poll.Close())
	}
	if r.timer >= 0 {
		errs = append(errs, unix.Close(r.timer))
	}
	for _, s := range r.sock {
		if s != nil {
			errs = append(errs, s.Close())
		}
	}
	return errors.Join(errs...)
}

// threadCPU is the calling thread's CPU time in seconds.
func threadCPU() float64 {
	var ru unix.Rusage
	if unix.Getrusage(unix.RUSAGE_THREAD, &ru) != nil {
		return 0
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

func monotonic() int64 {
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return ts.Nano()
}
