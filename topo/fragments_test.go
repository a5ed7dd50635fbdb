package topo_test

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/sys/unix"

	"github.com/lvslab/lvslab/topo"
)

// TestFragmentsToAServiceAreDropped: the later fragments of a datagram
// carry no ports, so the services set cannot match them; the fragments set
// drops every fragment to a service's address and protocol, and the
// director's kernel never sees one to reassemble (ReasmReqds stays 0). A
// fragmented ping is not a service's: the kernel reassembles and answers
// it. The set keeps an address and protocol while any service has it.
func TestFragmentsToAServiceAreDropped(t *testing.T) {
	in := build(t, "nat")
	h, err := in.NetNS("director")
	require.NoError(t, err)
	vip := netip.MustParseAddr("192.168.1.110")
	dns := topo.DropService{Proto: unix.IPPROTO_UDP, Addr: vip, Port: 53}
	other := topo.DropService{Proto: unix.IPPROTO_UDP, Addr: vip, Port: 54}
	require.NoError(t, topo.AddDropServices(int(h.Fd()), dns, other))
	list := func() string {
		out, err := in.Output("director", "nft", "list", "set", "netdev", topo.DropTable, topo.DropFrags)
		require.NoError(t, err)
		return string(out)
	}
	assert.Contains(t, list(), "elements = { 192.168.1.110 . udp }")

	require.NoError(t, in.Do("client", func() error {
		c, err := net.Dial("udp", netip.AddrPortFrom(vip, 53).String())
		if err != nil {
			return err
		}
		defer c.Close()
		_, err = c.Write(make([]byte, 4000)) // three fragments on a 1500-byte link
		return err
	}))
	// A fragmented ping after it, over the same link: once it is
	// answered, the datagram before it was dropped or counted.
	require.NoError(t, in.Do("client", func() error { return bigEcho(vip) }), "the director's kernel reassembles and answers a big ping")
	snmp := snmpCounters(t, in, "director")
	assert.Equal(t, "1", snmp["Ip ReasmOKs"], "reassembled: the ping only")
	assert.Equal(t, "3", snmp["Ip ReasmReqds"], "fragments the kernel queued: the ping's (3000 bytes: 3)")
	assert.Equal(t, "0", snmp["Icmp OutDestUnreachs"], "no port unreachable for the datagram")

	require.NoError(t, topo.DelDropServices(int(h.Fd()), dns))
	assert.Contains(t, list(), "192.168.1.110 . udp", "udp :54 still has the address")
	require.NoError(t, topo.DelDropServices(int(h.Fd()), other))
	assert.NotContains(t, list(), "192.168.1.110")
}

// bigEcho sends a 3000-byte echo request to dst and waits for its reply.
func bigEcho(dst netip.Addr) error {
	c, err := icmp.ListenPacket("ip4:icmp", "0.0.0.0")
	if err != nil {
		return err
	}
	defer c.Close()
	const id, seq = 0x1b6, 1
	req, err := (&icmp.Message{Type: ipv4.ICMPTypeEcho, Body: &icmp.Echo{ID: id, Seq: seq, Data: make([]byte, 3000)}}).Marshal(nil)
	if err != nil {
		return err
	}
	if _, err := c.WriteTo(req, &net.IPAddr{IP: dst.AsSlice()}); err != nil {
		return err
	}
	if err := c.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		return err
	}
	buf := make([]byte, 4096)
	for {
		n, _, err := c.ReadFrom(buf)
		if err != nil {
			return err
		}
		m, err := icmp.ParseMessage(1, buf[:n])
		if err != nil {
			return err
		}
		if e, ok := m.Body.(*icmp.Echo); ok && m.Type == ipv4.ICMPTypeEchoReply && e.ID == id && e.Seq == seq {
			return nil
		}
	}
}
