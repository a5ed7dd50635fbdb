package dataplane

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestNewerEntryShadowsOlderAcrossGrowth(t *testing.T) {
	tab := newConnTable(42)
	add := func(client netip.Addr, port uint16) uint32 {
		i := tab.alloc()
		c := tab.at(i)
		c.af, c.proto = 4, ProtoTCP
		c.caddr, c.cport = addr16(client), port
		c.vaddr, c.vport = addr16(vip), 80
		tab.hash(i)
		return i
	}
	older := add(cl1, 1000)
	newer := add(cl1, 1000)
	for n := range 5000 { // several doublings
		add(netip.AddrFrom4([4]byte{10, 3, byte(n >> 8), byte(n)}), 2000)
	}
	require.Greater(t, len(tab.buckets), 1024)
	ca, va := addr16(cl1), addr16(vip)
	assert.Equal(t, newer, tab.inGet(4, ProtoTCP, &ca, 1000, &va, 80))
	tab.unhash(newer)
	assert.Equal(t, older, tab.inGet(4, ProtoTCP, &ca, 1000, &va, 80))
	for n := range 5000 {
		a := addr16(netip.AddrFrom4([4]byte{10, 3, byte(n >> 8), byte(n)}))
		require.NotZero(t, tab.inGet(4, ProtoTCP, &a, 2000, &va, 80))
	}
}
