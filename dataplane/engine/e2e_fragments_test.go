package engine_test

import (
	"bytes"
	"crypto/rand"
	"net"
	"net/netip"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/sys/unix"

	"github.com/lvslab/lvslab/dataplane/engine"
	"github.com/lvslab/lvslab/dataplane/header"
	"github.com/lvslab/lvslab/dataplane/header/headertest"
	"github.com/lvslab/lvslab/dataplane/parse"
	"github.com/lvslab/lvslab/dataplane/xmit"
)

const echoPort = 5300

// echoServer answers every UDP datagram to listen in node with the
// datagram itself, and counts them.
func echoServer(t testing.TB, lb *lab, node string, listen netip.AddrPort) *atomic.Int64 {
	t.Helper()
	var pc *net.UDPConn
	require.NoError(t, lb.in.Do(node, func() (err error) {
		pc, err = net.ListenUDP("udp", net.UDPAddrFromAddrPort(listen))
		return err
	}))
	t.Cleanup(func() { pc.Close() })
	var n atomic.Int64
	go func() {
		buf := make([]byte, 1<<16)
		for {
			k, from, err := pc.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			n.Add(1)
			pc.WriteToUDPAddrPort(buf[:k], from)
		}
	}()
	return &n
}

// echoService adds udp VIP:5300 with every real server by method, each
// running an echo server (on the VIP for DR and TUN, whose replies must
// come from it), and returns their datagram counts.
func echoService(t testing.TB, lb *lab, method string) map[string]*atomic.Int64 {
	t.Helper()
	vs := netip.AddrPortFrom(vip, echoPort).String()
	lb.ipvsadm(t, "-A", "-u", vs, "-s", "rr")
	counts := map[string]*atomic.Int64{}
	for rip, node := range lb.rips {
		listen := netip.AddrPortFrom(netip.IPv4Unspecified(), echoPort)
		if method != "-m" {
			listen = netip.AddrPortFrom(vip, echoPort)
		}
		counts[node] = echoServer(t, lb, node, listen)
		lb.ipvsadm(t, "-a", "-u", vs, "-r", netip.AddrPortFrom(rip, echoPort).String(), method)
	}
	return counts
}

func (lb *lab) stats(t testing.TB) engine.Stats {
	t.Helper()
	s, err := engine.ReadStats(lb.socket)
	require.NoError(t, err)
	return s
}

// TestFragmentsEndToEnd: UDP datagrams of 4000 and 20000 bytes, which the
// client's stack sends in fragments, reach a NAT, a DR and a TUN real
// server whole and unchanged, and their echo comes back whole (through the
// director for NAT). IPVS counts one packet per datagram, as the kernel
// counts the reassembled skb. The director's kernel reassembles nothing and
// sends no ICMP: the engine alone handles the fragments.
func TestFragmentsEndToEnd(t *testing.T) {
	for _, mode := range []struct{ example, method string }{{"nat", "-m"}, {"dr", "-g"}, {"tun", "-i"}} {
		t.Run(mode.example, func(t *testing.T) {
			lb := startLab(t, mode.example, "rr")
			counts := echoService(t, lb, mode.method)
			sizes := []int{4000, 20000}
			for _, size := range sizes {
				msg := make([]byte, size)
				rand.Read(msg)
				var c net.Conn
				require.NoError(t, lb.in.Do("client", func() (err error) {
					c, err = net.Dial("udp", netip.AddrPortFrom(vip, echoPort).String())
					return err
				}))
				require.NoError(t, c.SetDeadline(time.Now().Add(5*time.Second)))
				_, err := c.Write(msg)
				require.NoError(t, err)
				got := make([]byte, 1<<16)
				n, err := c.Read(got)
				require.NoError(t, err, "the echo of %d bytes", size)
				assert.True(t, bytes.Equal(msg, got[:n]), "%d bytes came back as %d, unchanged: %v", size, n, bytes.Equal(msg, got[:n]))
				c.Close()
			}
			var served int64
			for _, n := range counts {
				served += n.Load()
			}
			assert.Equal(t, int64(len(sizes)), served, "each datagram reached a real server once")

			// ipvsadm: one connection and one in-packet per datagram (and
			// one out-packet per reply through a NAT director).
			service := "UDP " + netip.AddrPortFrom(vip, echoPort).String()
			require.Eventually(t, func() bool {
				var conns, inPkts, outPkts int
				for _, row := range destRows(lb.ipvsadm(t, "-L", "-n", "--stats", "--exact"), service) {
					c, _ := strconv.Atoi(row[0])
					i, _ := strconv.Atoi(row[1])
					o, _ := strconv.Atoi(row[2])
					conns, inPkts, outPkts = conns+c, inPkts+i, outPkts+o
				}
				wantOut := 0
				if mode.method == "-m" {
					wantOut = len(sizes)
				}
				return conns == len(sizes) && inPkts == len(sizes) && outPkts == wantOut
			}, 5*time.Second, 100*time.Millisecond, "Conns and InPkts %d, OutPkts as many for NAT:\n%s", len(sizes), lb.ipvsadm(t, "-L", "-n", "--stats", "--exact"))

			s := lb.stats(t)
			reassembled := uint64(len(sizes))
			if mode.method == "-m" {
				reassembled *= 2 // the replies too
			}
			assert.Equal(t, reassembled, s.Defrag["reassembled"], "datagrams the engine reassembled")
			assert.Equal(t, reassembled, s.Fragmented, "and sent in fragments again")
			assert.Empty(t, s.Drops(), "nothing dropped")

			snmp, err := lb.in.Output("director", "cat", "/proc/net/snmp")
			require.NoError(t, err)
			assert.Equal(t, "0", snmpValue(t, string(snmp), "Ip", "ReasmReqds"), "fragments the director's kernel saw")
			assert.Equal(t, "0", snmpValue(t, string(snmp), "Icmp", "OutDestUnreachs"))
			assert.Equal(t, "0", snmpValue(t, string(snmp), "Icmp", "OutTimeExcds"))
		})
	}
}

// TestLostFragmentInALab: a datagram one of whose fragments never arrives is
// never delivered; after ipfrag_time (2 s here) the engine gives up on it,
// counts the timeout, and the client gets ICMP fragment reassembly time
// exceeded from the VIP, as from a kernel director.
func TestLostFragmentInALab(t *testing.T) {
	lb := startLab(t, "nat", "rr", "--frag-timeout", "2s")
	counts := echoService(t, lb, "-m")
	client := netip.MustParseAddr("192.168.1.254")
	f := headertest.UDP(headertest.Spec{Src: client, Dst: vip, SrcPort: 40000, DstPort: echoPort, Payload: make([]byte, 4000)})
	var p parse.Packet
	require.Equal(t, parse.OK, parse.Frame(f, nil, &p))
	outs, lens := make([][]byte, 3), make([]int, 3)
	for i := range outs {
		outs[i] = make([]byte, 1600)
	}
	require.Equal(t, 3, xmit.FragmentIPv4(outs, lens, f, &p, 1500))
	var errs *icmp.PacketConn
	require.NoError(t, lb.in.Do("client", func() (err error) {
		errs, err = icmp.ListenPacket("ip4:icmp", "0.0.0.0")
		return err
	}))
	defer errs.Close()
	require.NoError(t, lb.in.Do("client", func() error {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_RAW)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		for i := range 2 { // the last fragment is lost
			if err := unix.Sendto(fd, outs[i][header.EthernetSize:lens[i]], 0, &unix.SockaddrInet4{Addr: vip.As4()}); err != nil {
				return err
			}
		}
		return nil
	}))
	require.Eventually(t, func() bool {
		s := lb.stats(t)
		return s.Defrag["fragments"] == 2 && s.Defrag["timeout"] == 1
	}, 10*time.Second, 100*time.Millisecond, "the engine times the datagram out")
	s := lb.stats(t)
	assert.Zero(t, s.Defrag["reassembled"])
	assert.Equal(t, uint64(1), s.Drops()["defrag.timeout"])
	for node, n := range counts {
		assert.Zero(t, n.Load(), "nothing reached %s", node)
	}
	snmp, err := lb.in.Output("director", "cat", "/proc/net/snmp")
	require.NoError(t, err)
	assert.Equal(t, "0", snmpValue(t, string(snmp), "Ip", "ReasmReqds"), "the director's kernel never saw the fragments")

	require.NoError(t, errs.SetReadDeadline(time.Now().Add(5*time.Second)))
	buf := make([]byte, 1500)
	for {
		n, from, err := errs.ReadFrom(buf)
		require.NoError(t, err, "ICMP time exceeded reaches the client")
		m, err := icmp.ParseMessage(1, buf[:n])
		require.NoError(t, err)
		if m.Type != ipv4.ICMPTypeTimeExceeded {
			continue
		}
		assert.Equal(t, 1, m.Code, "fragment reassembly time exceeded")
		assert.Equal(t, vip.String(), from.String(), "from the VIP")
		break
	}
}
