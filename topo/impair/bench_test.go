package impair

import (
	"crypto/rand"
	"encoding/hex"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/lvslab/lvslab/dataplane/header"
	ht "github.com/lvslab/lvslab/dataplane/header/headertest"
	"github.com/lvslab/lvslab/dataplane/packetio"
)

// BenchmarkLine is the queue's cost per frame: a push (copy into the
// ring, a jitter draw) and its release.
func BenchmarkLine(b *testing.B) {
	for _, reorder := range []bool{false, true} {
		for _, size := range []int{64, 1514, 65000} {
			name := map[int]string{64: "64B", 1514: "1514B", 65000: "64KB-GSO"}[size]
			if reorder {
				name += "-reorder"
			}
			b.Run(name, func(b *testing.B) {
				// A millisecond's delay with a frame every microsecond: a
				// thousand frames wait, as on a busy link.
				l := NewLine(Config{Delay: time.Millisecond, Jitter: 100 * time.Microsecond, Reorder: reorder, Limit: 2000, Bytes: 128 << 20}, 1)
				f := make([]byte, size)
				var vnet [header.VirtioNetHdrSize]byte
				out := make([]packetio.Packet, 1)
				b.SetBytes(int64(size))
				b.ReportAllocs()
				now := int64(0)
				for b.Loop() {
					now += 1000
					l.Push(f, &vnet, now)
					l.Release(now, out)
				}
			})
		}
	}
}

// BenchmarkRelay is the relay's cost per frame on veth: frames sent into
// one pair cross the relay (no delay) to another, in a scratch namespace:
// sender → x0 ⇄ x1 → relay → y0 ⇄ y1 → receiver. ns/op is wall time with
// the sender and receiver in the loop; relay-cpu-ns/frame is the relay
// thread's own CPU time (user and system) per frame, the measure that
// holds on a loaded machine. Allocations count the relay's goroutine too.
func BenchmarkRelay(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root to build a network namespace")
	}
	var r [3]byte
	rand.Read(r[:])
	name := "lvsimpb" + hex.EncodeToString(r[:])
	ip := func(args ...string) {
		out, err := exec.Command("ip", args...).CombinedOutput()
		require.NoError(b, err, "ip %v: %s", args, out)
	}
	ip("netns", "add", name)
	b.Cleanup(func() { ip("netns", "del", name) })
	for _, p := range [][2]string{{"x0", "x1"}, {"y0", "y1"}} {
		ip("-n", name, "link", "add", p[0], "type", "veth", "peer", "name", p[1])
		ip("-n", name, "link", "set", p[0], "up")
		ip("-n", name, "link", "set", p[1], "up")
	}
	n, err := ns.GetNS("/run/netns/" + name)
	require.NoError(b, err)
	defer n.Close()
	var relay *Relay
	var send, recv *packetio.AFPacket
	require.NoError(b, n.Do(func(ns.NetNS) error {
		var err error
		if relay, err = OpenRelay("x1", "y0", Config{}); err != nil {
			return err
		}
		x0, _ := net.InterfaceByName("x0")
		y1, _ := net.InterfaceByName("y1")
		if send, err = packetio.Open(x0.Index, relayBatch, packetio.Config{Vnet: true}); err != nil {
			return err
		}
		recv, err = packetio.Open(y1.Index, relayBatch, packetio.Config{Vnet: true, BufferBytes: socketBuffer})
		return err
	}))
	defer relay.Close()
	defer send.Close()
	defer recv.Close()
	done := make(chan error, 1)
	go func() { done <- relay.Run() }()

	out := packetio.NewBatch(relayBatch)
	frame := ht.UDP(ht.Spec{Src: netip.MustParseAddr("10.9.0.1"), Dst: netip.MustParseAddr("10.9.0.2"), SrcPort: 1, DstPort: 9, Payload: make([]byte, 1400)})
	for i := range out {
		out[i].Len = copy(out[i].Buf[out[i].Off:], frame)
	}
	in := packetio.NewBatch(relayBatch)
	// A batch out, then read until it arrived, so the relay's socket
	// buffers never overflow; frames of another size (the kernel's own
	// chatter) do not count. It returns how many were lost.
	cross := func(k int, wait time.Duration) int {
		send.WriteBatch(out[:k])
		deadline := time.Now().Add(wait)
		want := k
		for want > 0 {
			n, err := recv.ReadBatch(in)
			require.NoError(b, err)
			for _, p := range in[:n] {
				if p.Len == len(frame) {
					want--
				}
			}
			if n == 0 {
				if time.Now().After(deadline) {
					break
				}
				unix.Poll([]unix.PollFd{{Fd: int32(recv.Fd()), Events: unix.POLLIN}}, 10)
			}
		}
		return want
	}
	// New veth links drop frames until the kernel's link watcher has run.
	for start := time.Now(); cross(1, 50*time.Millisecond) > 0; {
		require.Less(b, time.Since(start), 5*time.Second, "the links never carried a frame")
	}
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	b.ResetTimer()
	for sent := 0; sent < b.N; {
		k := min(relayBatch, b.N-sent)
		if lost := cross(k, time.Second); lost > 0 {
			relay.Stop()
			b.Fatalf("%d frames lost (relay: %v, %+v)", lost, <-done, relay.Stats())
		}
		sent += k
	}
	b.StopTimer()
	relay.Stop()
	require.NoError(b, <-done)
	st := relay.Stats()
	b.ReportMetric(float64(st.FromNode.Dropped), "dropped")
	b.ReportMetric(st.CPUSeconds*1e9/float64(b.N), "relay-cpu-ns/frame")
}
