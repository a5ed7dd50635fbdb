package topo_test

import (
	"net"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/lvslab/lvslab/internal/pingtest"
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
	require.NoError(t, in.Do("client", func() error { return pingtest.Echo(vip, 3000) }), "the director's kernel reassembles and answers a big ping")
	snmp := snmpCounters(t, in, "director")
	assert.Equal(t, "1", snmp["Ip ReasmOKs"], "reassembled: the ping only")
	assert.Equal(t, "3", snmp["Ip ReasmReqds"], "fragments the kernel queued: the ping's (3000 bytes: 3)")
	assert.Equal(t, "0", snmp["Icmp OutDestUnreachs"], "no port unreachable for the datagram")

	require.NoError(t, topo.DelDropServices(int(h.Fd()), dns))
	assert.Contains(t, list(), "192.168.1.110 . udp", "udp :54 still has the address")
	require.NoError(t, topo.DelDropServices(int(h.Fd()), other))
	assert.NotContains(t, list(), "192.168.1.110")
}
