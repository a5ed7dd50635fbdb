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

// TestSignatureCoversChain hashes and unhashes entries through several
// doublings and checks the invariant lookups rely on: a bucket's signature
// has the bit of every entry in its chain, and an empty chain has none.
func TestSignatureCoversChain(t *testing.T) {
	tab := newConnTable(7)
	va := addr16(vip)
	var live []uint32
	for n := range 20000 {
		i := tab.alloc()
		c := tab.at(i)
		c.af, c.proto = 4, ProtoTCP
		c.caddr, c.cport = addr16(netip.AddrFrom4([4]byte{10, 4, byte(n >> 8), byte(n)})), uint16(n%7)
		c.vaddr, c.vport = va, 80
		tab.hash(i)
		live = append(live, i)
		if n%3 == 0 { // drop an older entry: chains shrink and empty out
			j := live[n/2]
			if tab.at(j).flags&connHashed != 0 {
				tab.unhash(j)
			}
		}
	}
	for j, b := range tab.buckets {
		if uint32(b) == 0 {
			require.Zero(t, b, "bucket %d: empty chain with a signature", j)
		}
		for i := uint32(b); i != 0; i = tab.at(i).next {
			c := tab.at(i)
			h := connHash(tab.seed, c.proto, &c.caddr, c.cport)
			require.Equal(t, uint64(j), h&uint64(len(tab.buckets)-1))
			require.NotZero(t, b&sigBit(h), "bucket %d lacks the bit of entry %d", j, i)
		}
	}
	for _, i := range live {
		c := tab.at(i)
		got := tab.inGet(4, ProtoTCP, &c.caddr, c.cport, &va, 80)
		if c.flags&connHashed != 0 {
			assert.Equal(t, i, got)
		} else {
			assert.Zero(t, got)
		}
	}
	other := addr16(netip.AddrFrom4([4]byte{10, 5, 0, 1}))
	assert.Zero(t, tab.inGet(4, ProtoTCP, &other, 1, &va, 80))
}

// TestShadowingSurvivesGrowthWhenSlotsAreReused: grow reads the slab in
// slot order, so it must keep a newer entry ahead of an older one with the
// same key also when the newer one took a lower, freed slot.
func TestShadowingSurvivesGrowthWhenSlotsAreReused(t *testing.T) {
	tab := newConnTable(3)
	add := func(client netip.Addr, port, vport uint16) uint32 {
		i := tab.alloc()
		c := tab.at(i)
		c.af, c.proto = 4, ProtoTCP
		c.caddr, c.cport = addr16(client), port
		c.vaddr, c.vport = addr16(vip), vport
		tab.hash(i)
		return i
	}
	freed := tab.alloc()
	older := add(cl1, 1000, 80)
	other := add(cl1, 1000, 443) // same chain key, another service
	tab.release(freed)
	newer := add(cl1, 1000, 80)
	require.Less(t, newer, older)
	for n := range 5000 {
		add(netip.AddrFrom4([4]byte{10, 3, byte(n >> 8), byte(n)}), 2000, 80)
	}
	require.Greater(t, len(tab.buckets), 1024)
	ca, va := addr16(cl1), addr16(vip)
	assert.Equal(t, newer, tab.inGet(4, ProtoTCP, &ca, 1000, &va, 80))
	assert.Equal(t, other, tab.inGet(4, ProtoTCP, &ca, 1000, &va, 443))
	tab.unhash(newer)
	assert.Equal(t, older, tab.inGet(4, ProtoTCP, &ca, 1000, &va, 80))
}
