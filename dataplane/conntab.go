package dataplane

import (
	"encoding/binary"
	"math/bits"
	"unsafe"
)

// Connection flags (IP_VS_CONN_F_*, spec §3.1) kept in conn.flags.
const (
	connFwdMask   uint32 = 0x0007
	connHashed    uint32 = 0x0040
	connNoOutput  uint32 = 0x0080
	connInactive  uint32 = 0x0100
	connTemplate  uint32 = 0x1000
	connOnePacket uint32 = 0x2000
)

// Template states (IP_VS_CTPL_S_*): a template is ASSURED once a connection
// it controls reached ESTABLISHED or saw a reply.
const (
	tplNone    uint8 = 0
	tplAssured uint8 = 1
)

// conn is one connection or persistence template. It holds no pointers, so
// a table of millions costs the garbage collector nothing, and is 112 bytes.
// Links to other entries are slab indices plus one (0 = none).
//
// The fields a chain walk reads (the client side, the chain link, the
// flags) come first and fill 32 bytes, then the virtual address a hit
// compares: a lookup that passes an entry touches one cache line for three
// entries in four (entries start at offsets 0, 48, 32 and 16 of a line).
type conn struct {
	caddr               [16]byte // client (As16 form)
	cport, vport, dport uint16
	proto               uint8
	af                  uint8 // 4 or 6; 0 marks a free slot
	flags               uint32
	next                uint32   // hash chain (index+1)
	vaddr, daddr        [16]byte // virtual, destination

	expires int64 // virtual time (ns) at which the timer fires
	armed   int64 // earliest pending heap entry for this conn

	state    uint8 // protocol state, or template state
	_        [3]uint8
	fwmark   uint32
	timeout  uint32 // ms; 0 after a forced expiry
	dest     uint32 // Director.dests index
	control  uint32 // controlling template (index+1)
	nControl uint32 // connections this entry controls
	gen      uint32 // incremented when the slot is freed
	inPkts   uint32
}

// chunkBits sizes the slab's chunks: growing the table adds a chunk and
// never copies the entries already there.
const chunkBits = 16

// connTable is the connection table: a slab of conns and a chained hash
// index keyed by (protocol, client address, client port), the kernel's
// ip_vs_conn_tab key. Inbound, outbound and template lookups all walk one
// chain: the client side of a connection is the same in both directions.
//
// A bucket holds its chain's head (low 32 bits) and a signature (high 32
// bits): one bit per entry, chosen by the top bits of its key's hash. A key
// whose bit is clear is not in the chain, so the lookup of a new
// connection's first packet usually ends at the bucket without reading an
// entry. Bits are only set while the chain lives and cleared when it
// empties, so the signature may claim more than the chain holds, never less.
type connTable struct {
	chunks  [][]conn
	size    uint32 // slots handed out so far
	free    uint32 // free list through conn.next (index+1)
	buckets []uint64
	count   int
	seed    uint64
}

func newConnTable(seed uint64) connTable {
	return connTable{buckets: make([]uint64, 1024), seed: seed}
}

// connHash mixes the lookup key; seed keeps chains unpredictable to clients.
// The address is read as two words, each folded through a 64×64→128-bit
// multiply (wyhash's mum).
func connHash(seed uint64, proto uint8, a *[16]byte, port uint16) uint64 {
	lo := binary.LittleEndian.Uint64(a[:8])
	hi := binary.LittleEndian.Uint64(a[8:])
	h := mum(hi^seed, lo^uint64(port)<<8^uint64(proto)^0xe7037ed1a0b428db)
	return mum(h^0xa0761d6478bd642f, seed^0x8ebc6af09c88c6e3)
}

func mum(a, b uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	return hi ^ lo
}

// sigBit is a hash's bit in its bucket's signature.
func sigBit(h uint64) uint64 { return 1 << (32 + h>>59) }

// head is the chain a hash falls into, and its signature.
func (t *connTable) head(h uint64) (uint32, uint64) {
	b := t.buckets[h&uint64(len(t.buckets)-1)]
	return uint32(b), b
}

// at is the entry of slot index i (index+1 form).
func (t *connTable) at(i uint32) *conn {
	i--
	return &t.chunks[i>>chunkBits][i&(1<<chunkBits-1)]
}

// alloc returns a zeroed slot (index+1), not yet hashed.
func (t *connTable) alloc() uint32 {
	if t.free != 0 {
		i := t.free
		c := t.at(i)
		t.free = c.next
		gen := c.gen
		*c = conn{gen: gen}
		return i
	}
	if t.size>>chunkBits == uint32(len(t.chunks)) {
		chunk := make([]conn, 1<<chunkBits)
		adviseHuge(unsafe.Pointer(&chunk[0]), unsafe.Sizeof(conn{})<<chunkBits)
		t.chunks = append(t.chunks, chunk)
	}
	t.size++
	return t.size
}

// release returns a slot to the free list; it must be unhashed.
func (t *connTable) release(i uint32) {
	c := t.at(i)
	c.af = 0
	c.gen++
	c.next = t.free
	t.free = i
}

// hash links the entry at the head of its chain, as the kernel does, so a
// new connection shadows an older one with the same key until that expires.
func (t *connTable) hash(i uint32) {
	if 2*t.count >= len(t.buckets) {
		t.grow()
	}
	c := t.at(i)
	h := connHash(t.seed, c.proto, &c.caddr, c.cport)
	b := &t.buckets[h&uint64(len(t.buckets)-1)]
	c.next = uint32(*b)
	*b = *b&^0xffffffff | sigBit(h) | uint64(i)
	c.flags |= connHashed
	t.count++
}

// bucket is the hash bucket of entry c's key.
func (t *connTable) bucket(c *conn) *uint64 {
	return &t.buckets[connHash(t.seed, c.proto, &c.caddr, c.cport)&uint64(len(t.buckets)-1)]
}

func (t *connTable) unhash(i uint32) {
	c := t.at(i)
	if c.flags&connHashed == 0 {
		return
	}
	b := t.bucket(c)
	if uint32(*b) == i {
		*b = *b&^0xffffffff | uint64(c.next)
		if c.next == 0 {
			*b = 0 // the chain is empty: so is its signature
		}
	} else {
		for p := &t.at(uint32(*b)).next; *p != 0; p = &t.at(*p).next {
			if *p == i {
				*p = c.next
				break
			}
		}
	}
	c.next = 0
	c.flags &^= connHashed
	t.count--
}

// grow doubles the bucket array. It reads the slab in order, not chain by
// chain: entries sit in the slab in no particular bucket order, so walking
// the chains costs a cache miss per entry while a pass in slab order streams.
// New links go to a side array first, so the old chains stay intact for the
// one thing slab order does not give: entries with the same key must keep
// their chain order (a newer connection shadows an older one). Entries with
// different keys may share a chain in any order.
func (t *connTable) grow() {
	old := t.buckets
	t.buckets = make([]uint64, 2*len(old))
	adviseHuge(unsafe.Pointer(&t.buckets[0]), uintptr(len(t.buckets))*8)
	next := make([]uint32, t.size+1) // new chain links, by slot
	for i := uint32(1); i <= t.size; i++ {
		c := t.at(i)
		if c.af == 0 || c.flags&connHashed == 0 {
			continue
		}
		h := connHash(t.seed, c.proto, &c.caddr, c.cport)
		b := &t.buckets[h&uint64(len(t.buckets)-1)]
		if *b&sigBit(h) == 0 {
			// No entry with this key in the chain yet: the head will do.
			next[i] = uint32(*b)
			*b = *b&^0xffffffff | sigBit(h) | uint64(i)
			continue
		}
		t.insertOrdered(b, next, i, h, old[h&uint64(len(old)-1)])
	}
	for i := uint32(1); i <= t.size; i++ {
		if c := t.at(i); c.af != 0 && c.flags&connHashed != 0 {
			c.next = next[i]
		}
	}
}

// insertOrdered links entry i into the new chain of bucket b (links in
// next) before the first entry with the same key hash h that comes after i
// in their old chain (from oldHead), or at the end.
func (t *connTable) insertOrdered(b *uint64, next []uint32, i uint32, h uint64, oldHead uint64) {
	prev := uint32(0) // 0: i goes at the head
	for x := uint32(*b); x != 0; x = next[x] {
		c := t.at(x)
		if connHash(t.seed, c.proto, &c.caddr, c.cport) == h && t.before(uint32(oldHead), i, x) {
			break
		}
		prev = x
	}
	if prev == 0 {
		next[i] = uint32(*b)
		*b = *b&^0xffffffff | uint64(i)
	} else {
		next[i] = next[prev]
		next[prev] = i
	}
	*b |= sigBit(h)
}

// before reports whether entry i precedes entry x in the old chain starting
// at head (both are in it).
func (t *connTable) before(head, i, x uint32) bool {
	for e := head; e != 0; e = t.at(e).next {
		switch e {
		case i:
			return true
		case x:
			return false
		}
	}
	return false
}

// inGet finds the connection of an inbound packet (ip_vs_conn_in_get).
func (t *connTable) inGet(af, proto uint8, caddr *[16]byte, cport uint16, vaddr *[16]byte, vport uint16) uint32 {
	h := connHash(t.seed, proto, caddr, cport)
	i, sig := t.head(h)
	if sig&sigBit(h) == 0 {
		return 0
	}
	for i != 0 {
		c := t.at(i)
		if c.cport == cport && c.caddr == *caddr && c.vport == vport && c.proto == proto && c.af == af &&
			c.flags&connTemplate == 0 && c.vaddr == *vaddr {
			return i
		}
		i = c.next
	}
	return 0
}

// outGet finds the connection of a reply from saddr:sport to the client
// daddr:dport: the reply comes from the destination for NAT and from the
// virtual address for the other methods.
func (t *connTable) outGet(af, proto uint8, saddr *[16]byte, sport uint16, daddr *[16]byte, dport uint16) uint32 {
	h := connHash(t.seed, proto, daddr, dport)
	i, sig := t.head(h)
	if sig&sigBit(h) == 0 {
		return 0
	}
	for i != 0 {
		c := t.at(i)
		if c.cport == dport && c.caddr == *daddr && c.proto == proto && c.af == af && c.flags&connTemplate == 0 {
			if c.flags&connFwdMask == uint32(MethodMasq) {
				if c.dport == sport && c.daddr == *saddr {
					return i
				}
			} else if c.vport == sport && c.vaddr == *saddr {
				return i
			}
		}
		i = c.next
	}
	return 0
}

// templateGet finds a persistence template (ip_vs_ct_in_get).
func (t *connTable) templateGet(af, proto uint8, caddr *[16]byte, vaddr *[16]byte, vport uint16) uint32 {
	h := connHash(t.seed, proto, caddr, 0)
	i, sig := t.head(h)
	if sig&sigBit(h) == 0 {
		return 0
	}
	for i != 0 {
		c := t.at(i)
		if c.cport == 0 && c.caddr == *caddr && c.vport == vport && c.proto == proto && c.af == af &&
			c.flags&connTemplate != 0 && c.vaddr == *vaddr {
			return i
		}
		i = c.next
	}
	return 0
}
