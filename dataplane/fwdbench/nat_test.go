package fwdbench

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lvslab/lvslab/dataplane/packetio"
	"github.com/lvslab/lvslab/dataplane/parse"
)

// needLab skips unless the test can build namespaces and has its peers.
func needLab(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to build network namespaces")
	}
	for _, p := range []string{"ip", "nft", "iperf3", "ss"} {
		if _, err := exec.LookPath(p); err != nil {
			t.Skipf("needs %s: %v", p, err)
		}
	}
}

// newLab builds a lab and removes it after the test, proving nothing stays.
func newLab(t *testing.T) *Lab {
	t.Helper()
	l, err := NewLab("lvspk")
	require.NoError(t, err)
	t.Cleanup(func() {
		require.NoError(t, l.Close())
		left, err := l.Leftovers()
		require.NoError(t, err)
		assert.Empty(t, left, "lab leftovers")
	})
	return l
}

// inNS runs f in namespace name (sockets made there stay there).
func inNS(t *testing.T, name string, f func() error) {
	t.Helper()
	n, err := ns.GetNS(NetnsPath(name))
	require.NoError(t, err)
	defer n.Close()
	require.NoError(t, n.Do(func(ns.NetNS) error { return f() }))
}

// TestForwarderCarriesTCPAndUDP drives real traffic through the AF_PACKET
// forwarder — NAT over recvmmsg, NAT over a TPACKET_V2 ring, and direct
// routing — with default offloads on: an iperf3 TCP bulk transfer (GSO
// super-packets must cross whole), UDP datagrams that must come back from
// the VIP, and an ICMP error relayed (for NAT with its quote rewritten). The director
// kernel must stay silent, and both directions of each flow must meet in
// one worker.
func TestForwarderCarriesTCPAndUDP(t *testing.T) {
	needLab(t)
	for _, dp := range []string{StaticNAT, StaticRing, StaticDR} {
		t.Run(dp, func(t *testing.T) { testForwarder(t, dp) })
	}
}

func testForwarder(t *testing.T, dp string) {
	l := newLab(t)

	var mu sync.Mutex
	seen := map[netip.AddrPort][2]int{} // client endpoint → worker+1 per side
	observe := func(w int, side packetio.Side, c netip.AddrPort) {
		mu.Lock()
		s := seen[c]
		s[side] = w + 1
		seen[c] = s
		mu.Unlock()
	}
	a, err := l.Start(dp, 2, observe)
	require.NoError(t, err)
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			require.NoError(t, a.Stop())
		}
	}
	t.Cleanup(stop)

	// UDP: a connected client socket only accepts replies from VIP:7007.
	// The server echoes on its RIP (NAT) and on the VIP it holds on lo (DR).
	for _, at := range []netip.Addr{l.ServerAddr, l.VIP} {
		var echo net.PacketConn
		inNS(t, l.Server, func() (err error) {
			echo, err = net.ListenPacket("udp4", netip.AddrPortFrom(at, 7007).String())
			return err
		})
		defer echo.Close()
		go func() {
			buf := make([]byte, 2048)
			for {
				n, from, err := echo.ReadFrom(buf)
				if err != nil {
					return
				}
				echo.WriteTo(buf[:n], from)
			}
		}()
	}
	var udp *net.UDPConn
	inNS(t, l.Client, func() (err error) {
		udp, err = net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(l.VIP, 7007)))
		return err
	})
	defer udp.Close()
	buf := make([]byte, 2048)
	got := 0
	for i := range 50 {
		msg := []byte{byte(i), 'l', 'v', 's'}
		_, err := udp.Write(msg)
		require.NoError(t, err)
		udp.SetReadDeadline(time.Now().Add(2 * time.Second))
		n, err := udp.Read(buf)
		if err == nil && n == len(msg) && buf[0] == byte(i) {
			got++
		}
	}
	assert.Equal(t, 50, got, "UDP echoes that came back from the VIP")

	// ICMP relay: the server answers a datagram to a closed port with port
	// unreachable; relayed out with its quote rewritten to the VIP, it
	// reaches the client's connected socket as ECONNREFUSED.
	var closed *net.UDPConn
	inNS(t, l.Client, func() (err error) {
		closed, err = net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(l.VIP, 7999)))
		return err
	})
	defer closed.Close()
	refused := false
	for range 5 {
		closed.Write([]byte("x"))
		closed.SetReadDeadline(time.Now().Add(time.Second))
		if _, err := closed.Read(buf); errors.Is(err, syscall.ECONNREFUSED) {
			refused = true
			break
		}
	}
	assert.True(t, refused, "the relayed ICMP port unreachable reached the client socket")

	// The director's kernel neither answers nor forwards: a SYN to its own
	// address gets no RST (the dial times out instead of being refused).
	inNS(t, l.Client, func() error {
		c, err := net.DialTimeout("tcp4", netip.AddrPortFrom(l.DirClientAddr, 22).String(), 500*time.Millisecond)
		if c != nil {
			c.Close()
		}
		var ne net.Error
		assert.True(t, errors.As(err, &ne) && ne.Timeout(), "dial to the director kernel: %v", err)
		return nil
	})

	// TCP bulk with default offloads.
	srv, err := l.StartServer()
	require.NoError(t, err)
	defer srv.Stop()
	r, err := l.Drive(l.VIP, Load{Seconds: 2})
	require.NoError(t, err)
	assert.Greater(t, r.BitsPerSecond, 1e8, "TCP through the forwarder")

	drops, err := a.DropCount()
	require.NoError(t, err)
	assert.Greater(t, drops, uint64(100), "the netdev ingress drop saw the packets after the taps")

	stop()
	var total WorkerStats
	for _, s := range a.Stats {
		total.In += s.In
		total.Out += s.Out
		total.GSO += s.GSO
		total.ChecksumPartly += s.ChecksumPartly
		total.MaxFrame = max(total.MaxFrame, s.MaxFrame)
		total.Reasons.Merge(&s.Reasons)
		assert.Zero(t, s.Socket[0].Truncated+s.Socket[1].Truncated, "no frame cut short")
		assert.Zero(t, s.Socket[0].Outgoing+s.Socket[1].Outgoing, "no own sends read back")
		assert.Zero(t, s.Socket[0].SendErrs+s.Socket[1].SendErrs, "no frame refused")
	}
	t.Logf("forwarder: in %d out %d gso %d partial %d max frame %d", total.In, total.Out, total.GSO, total.ChecksumPartly, total.MaxFrame)
	assert.Positive(t, total.GSO, "GSO super-packets crossed whole")
	assert.Greater(t, total.MaxFrame, 1514)
	assert.Positive(t, total.ChecksumPartly)
	assert.Zero(t, total.Reasons[parse.BadVnetHdr])

	both := 0
	for c, s := range seen {
		if s[0] != 0 && s[1] != 0 {
			both++
			assert.Equal(t, s[0], s[1], "both directions of %v in one worker", c)
		}
	}
	assert.Positive(t, both, "flows seen in both directions")
}
