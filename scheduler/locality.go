package scheduler

import (
	"net/netip"
	"slices"
	"time"
)

// The cache geometry and garbage-collection constants lblc and lblcr share
// (ip_vs_lblc.c, ip_vs_lblcr.c, §2.10).
const (
	localityBits      = 10                   // CONFIG_IP_VS_LBLC{,R}_TAB_BITS
	localityBuckets   = 1 << localityBits    // hash buckets
	localityMaxSize   = localityBuckets * 16 // soft limit on entries
	localityIdle      = 6 * time.Minute      // ENTRY_TIMEOUT of the partial check
	localityFullEvery = 30                   // COUNT_FOR_FULL_EXPIRATION, in 60 s ticks
)

// localityEntry maps one destination address of the packets (the VIP) to the
// cached dest (lblc) or dest set (lblcr). Dests are held by identity, so a
// deleted dest stays cached without AVAILABLE, and one brought back from the
// trash is found again.
type localityEntry struct {
	addr    netip.Addr
	lastuse time.Time
	dest    *Dest   // lblc
	set     []*Dest // lblcr, most recently inserted first
	lastmod time.Time
}

// localityCache is the kernel's bucketed table. The buckets matter only to
// the partial garbage collection, which walks them round-robin from a rover.
type localityCache struct {
	buckets [localityBuckets][]*localityEntry
	entries int
	rover   int
	counter int // 60 s ticks since the last full check, starting at 1
}

func newLocalityCache() *localityCache { return &localityCache{counter: 1} }

func localityBucket(a netip.Addr) uint32 { return hash32(fold(a), localityBits) }

func (c *localityCache) get(a netip.Addr) *localityEntry {
	for _, en := range c.buckets[localityBucket(a)] {
		if en.addr == a {
			return en
		}
	}
	return nil
}

// add creates an entry for a, unless the table already holds more than its
// soft limit ("ipvs: bound LBLCR and LBLC cache growth", carried by the
// oracle kernel); the caller then just uses its choice uncached.
func (c *localityCache) add(a netip.Addr, now time.Time) *localityEntry {
	if c.entries > localityMaxSize {
		return nil
	}
	en := &localityEntry{addr: a, lastuse: now}
	b := &c.buckets[localityBucket(a)]
	*b = append(*b, en)
	c.entries++
	return en
}

// expire is one 60 s tick of ip_vs_lblc{,r}_check_expire: every 30th tick a
// full pass drops entries unused for the expiration sysctl; in between, only
// an over-full table is trimmed of entries idle for 6 minutes, bucket by
// bucket from the rover, until the goal is met.
func (c *localityCache) expire(now time.Time, expiration time.Duration) {
	if c.counter%localityFullEvery == 0 {
		for i := range c.buckets {
			c.drop(i, func(en *localityEntry) bool { return !en.lastuse.Add(expiration).After(now) })
		}
		c.counter = 1
		return
	}
	if c.entries <= localityMaxSize {
		c.counter++
		return
	}
	goal := min((c.entries-localityMaxSize)*4/3, localityMaxSize/2)
	j := c.rover
	for range localityBuckets {
		j = (j + 1) & (localityBuckets - 1)
		goal -= c.drop(j, func(en *localityEntry) bool { return !now.Before(en.lastuse.Add(localityIdle)) })
		if goal <= 0 {
			break
		}
	}
	c.rover = j
}

// drop removes the entries of bucket i that stale reports, returning how many.
func (c *localityCache) drop(i int, stale func(*localityEntry) bool) int {
	b := c.buckets[i]
	kept := b[:0]
	for _, en := range b {
		if !stale(en) {
			kept = append(kept, en)
		}
	}
	clear(b[len(kept):])
	c.buckets[i] = kept
	n := len(b) - len(kept)
	c.entries -= n
	return n
}

// tunables returns the service's sysctls, or the kernel defaults.
func (s *Service) tunables() *Tunables {
	if s.Tunables == nil {
		return &defaultTunables
	}
	return s.Tunables
}

var defaultTunables = *DefaultTunables()

// holds reports whether an entry names d: the kernel keeps a reference for
// every cached dest, so a deleted one stays in the trash while cached.
func (c *localityCache) holds(d *Dest) bool {
	for _, b := range c.buckets {
		for _, en := range b {
			if en.dest == d || slices.Contains(en.set, d) {
				return true
			}
		}
	}
	return false
}
