package packetio

import (
	"crypto/rand"
	"encoding/hex"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"testing"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netns"

	"github.com/lvslab/lvslab/dataplane/header"
	ht "github.com/lvslab/lvslab/dataplane/header/headertest"
	"github.com/lvslab/lvslab/dataplane/parse"
	"github.com/lvslab/lvslab/topo"
)

// vethNS builds a namespace with a veth pair (a, b) up, and removes it
// after the test, proving it gone.
func vethNS(t *testing.T) (ns.NetNS, int, int) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to build a network namespace")
	}
	var r [3]byte
	rand.Read(r[:])
	name := "lvspio" + hex.EncodeToString(r[:])
	ip := func(args ...string) {
		out, err := exec.Command("ip", args...).CombinedOutput()
		require.NoError(t, err, "ip %v: %s", args, out)
	}
	ip("netns", "add", name)
	t.Cleanup(func() {
		ip("netns", "del", name)
		_, err := os.Stat("/run/netns/" + name)
		assert.True(t, os.IsNotExist(err), "namespace %s left behind", name)
	})
	ip("-n", name, "link", "add", "lvsa", "type", "veth", "peer", "name", "lvsb")
	ip("-n", name, "link", "set", "lvsa", "up")
	ip("-n", name, "link", "set", "lvsb", "up")
	n, err := ns.GetNS("/run/netns/" + name)
	require.NoError(t, err)
	t.Cleanup(func() { n.Close() })
	var a, b int
	require.NoError(t, n.Do(func(ns.NetNS) error {
		ia, err := net.InterfaceByName("lvsa")
		if err != nil {
			return err
		}
		ib, err := net.InterfaceByName("lvsb")
		if err != nil {
			return err
		}
		a, b = ia.Index, ib.Index
		return nil
	}))
	// Frames sent before the link watcher attached the veths' qdiscs are dropped.
	require.NoError(t, topo.WaitUp(netns.NsHandle(n.Fd()), 10*time.Second, "lvsa", "lvsb"))
	return n, a, b
}

func openIn(t *testing.T, n ns.NetNS, ifindex int, cfg Config) *AFPacket {
	t.Helper()
	var s *AFPacket
	require.NoError(t, n.Do(func(ns.NetNS) (err error) {
		s, err = Open(ifindex, 16, cfg)
		return err
	}))
	t.Cleanup(func() { s.Close() })
	return s
}

// readN reads until n frames arrived or a deadline passed.
func readN(t *testing.T, s *AFPacket, batch []Packet, n int) []Packet {
	t.Helper()
	var got []Packet
	deadline := time.Now().Add(3 * time.Second)
	for len(got) < n && time.Now().Before(deadline) {
		k, err := s.ReadBatch(batch)
		require.NoError(t, err)
		for _, p := range batch[:k] {
			if header.Ethernet(p.Frame()).Type() != header.EtherTypeIPv4 {
				continue // IPv6 router solicitations and the like
			}
			q := p
			q.Buf = append([]byte(nil), p.Buf...)
			got = append(got, q)
		}
		if k == 0 {
			time.Sleep(5 * time.Millisecond)
		}
	}
	return got
}

func TestAFPacketBatchesAcrossVeth(t *testing.T) {
	n, a, b := vethNS(t)
	cfg := Config{Vnet: true, QdiscBypass: true}
	sa, sb := openIn(t, n, a, cfg), openIn(t, n, b, cfg)

	cip, vip := netip.MustParseAddr("10.9.0.1"), netip.MustParseAddr("10.9.0.2")
	out := NewBatch(4)
	for i := range out {
		f := ht.UDP(ht.Spec{Src: cip, Dst: vip, SrcPort: uint16(1000 + i), DstPort: 53, Payload: []byte("lvs")})
		out[i].Len = copy(out[i].Buf[out[i].Off:], f)
	}
	// A frame larger than the MTU without GSO is refused; the rest go out.
	big := ht.UDP(ht.Spec{Src: cip, Dst: vip, SrcPort: 9, DstPort: 9, Payload: make([]byte, 3000)})
	out[2].Len = copy(out[2].Buf[out[2].Off:], big)
	sent, err := sa.WriteBatch(out)
	require.NoError(t, err)
	assert.Equal(t, 3, sent)
	assert.Equal(t, uint64(1), sa.Stats.SendErrs)

	got := readN(t, sb, NewBatch(8), 3)
	require.Len(t, got, 3)
	for i, want := range []int{0, 1, 3} {
		assert.Equal(t, out[want].Frame(), got[i].Frame())
		assert.Equal(t, [header.VirtioNetHdrSize]byte{}, got[i].Vnet, "a plain frame has an empty vnet header")
	}

	// The sender does not read its own frames back.
	k, err := sa.ReadBatch(NewBatch(8))
	require.NoError(t, err)
	for range k {
		assert.Fail(t, "the sending socket read a frame")
	}
	assert.Zero(t, sa.Stats.Outgoing)
}

// TestFanoutKeepsAClientOnOneSocket sends frames from many client endpoints
// and their NAT replies (from a different address) through a two-socket
// fanout group per side: each client's frames land on one socket, and its
// replies on the socket with the same index on the other side.
func TestFanoutKeepsAClientOnOneSocket(t *testing.T) {
	n, a, b := vethNS(t)
	send := openIn(t, n, a, Config{})
	var client, server [2]*AFPacket
	for i := range 2 {
		client[i] = openIn(t, n, b, Config{Fanout: &Fanout{ID: 7, Side: ClientSide, Workers: 2}})
	}
	// The server side of the test uses the same veth end under another
	// group; it sees the replies (and the requests: those it ignores).
	for i := range 2 {
		server[i] = openIn(t, n, b, Config{Fanout: &Fanout{ID: 8, Side: ServerSide, Workers: 2}})
	}
	vip, rip := netip.MustParseAddr("10.9.0.100"), netip.MustParseAddr("10.9.1.2")
	vip6, rip6 := netip.MustParseAddr("2001:db8::100"), netip.MustParseAddr("2001:db8:1::2")
	out := NewBatch(80)
	var clients []netip.AddrPort
	for i := range 40 {
		c := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 9, byte(i), byte(7 * i)}), uint16(30000+97*i))
		v, r := vip, rip
		if i%2 == 1 {
			c = netip.AddrPortFrom(netip.AddrFrom16([16]byte{0x20, 1, 0xd, 0xb8, 15: byte(i * 5)}), uint16(30000+89*i))
			v, r = vip6, rip6
		}
		clients = append(clients, c)
		req := ht.UDP(ht.Spec{Src: c.Addr(), Dst: v, SrcPort: c.Port(), DstPort: 53})
		rep := ht.UDP(ht.Spec{Src: r, Dst: c.Addr(), SrcPort: 5300, DstPort: c.Port()})
		out[2*i].Len = copy(out[2*i].Buf[Headroom:], req)
		out[2*i+1].Len = copy(out[2*i+1].Buf[Headroom:], rep)
	}
	_, err := send.WriteBatch(out)
	require.NoError(t, err)

	count := map[netip.AddrPort][2]int{} // client → socket index+1 on each side
	for side, socks := range [][2]*AFPacket{client, server} {
		for i, s := range socks {
			batch := NewBatch(64)
			deadline := time.Now().Add(time.Second)
			for time.Now().Before(deadline) {
				k, err := s.ReadBatch(batch)
				require.NoError(t, err)
				for _, p := range batch[:k] {
					var q parse.Packet
					if parse.Frame(p.Frame(), nil, &q) != parse.OK || q.Proto != header.ProtocolUDP {
						continue // router solicitations and the like
					}
					isReq := q.Dst == vip || q.Dst == vip6
					if isReq != (side == 0) {
						continue
					}
					c := netip.AddrPortFrom(q.Src, q.SrcPort)
					if !isReq {
						c = netip.AddrPortFrom(q.Dst, q.DstPort)
					}
					e := count[c]
					assert.Zero(t, e[side], "client %v seen twice on side %d", c, side)
					e[side] = i + 1
					count[c] = e
				}
				runtime.Gosched()
			}
		}
	}
	used := map[bool]map[int]bool{true: {}, false: {}} // by IPv4-ness
	for _, c := range clients {
		e := count[c]
		require.NotZero(t, e[0], "request of %v", c)
		assert.Equal(t, e[0], e[1], "request and reply of %v on the same index", c)
		used[c.Addr().Is4()][e[0]] = true
	}
	assert.Len(t, used[true], 2, "both sockets get IPv4 clients")
	assert.Len(t, used[false], 2, "both sockets get IPv6 clients")
}

func TestOpenWorkers(t *testing.T) {
	n, _, _ := vethNS(t)
	require.NoError(t, n.Do(func(ns.NetNS) error {
		ports := []Port{{Ifname: "lvsa", Side: ClientSide}, {Ifname: "lvsb", Side: ServerSide}}
		for _, ring := range []bool{false, true} {
			ws, err := OpenWorkers(ports, 2, 8, Config{Vnet: true}, ring)
			require.NoError(t, err, "ring %v", ring)
			require.Len(t, ws, 2)
			for _, w := range ws {
				require.Len(t, w.Sockets, 2)
			}
			assert.NoError(t, CloseWorkers(ws))
		}
		_, err := OpenWorkers([]Port{{Ifname: "lvsa"}, {Ifname: "lvsnothere"}}, 2, 8, Config{}, false)
		assert.ErrorContains(t, err, "lvsnothere")
		return nil
	}))
}

// TestKernelOffDropsAfterTheTaps proves the order the director relies on:
// a frame arriving on an interface reaches the AF_PACKET socket, and then
// the netdev ingress drop takes it from the kernel.
func TestKernelOffDropsAfterTheTaps(t *testing.T) {
	n, a, b := vethNS(t)
	k, err := NewKernelOff(int(n.Fd()), "lvsa", "lvsb")
	require.NoError(t, err)
	send, recv := openIn(t, n, a, Config{}), openIn(t, n, b, Config{})

	out := NewBatch(5)
	for i := range out {
		f := ht.UDP(ht.Spec{Src: netip.MustParseAddr("10.9.0.1"), Dst: netip.MustParseAddr("10.9.0.2"), SrcPort: uint16(i + 1), DstPort: 9})
		out[i].Len = copy(out[i].Buf[Headroom:], f)
	}
	_, err = send.WriteBatch(out)
	require.NoError(t, err)
	assert.Len(t, readN(t, recv, NewBatch(8), 5), 5, "the tap saw every frame")
	dropped, err := k.Dropped()
	require.NoError(t, err)
	assert.GreaterOrEqual(t, dropped, uint64(5), "and the kernel got none of them (IPv6 neighbour discovery may add to the count)")

	require.NoError(t, k.Close())
	var list []byte
	require.NoError(t, n.Do(func(ns.NetNS) (err error) {
		list, err = exec.Command("nft", "list", "tables").Output()
		return err
	}))
	assert.NotContains(t, string(list), KernelOffTable, "Close removes the table")
}
