// Package defrag reassembles IPv4 datagrams from their fragments as the
// kernel does before IPVS sees them (nf_defrag_ipv4, which IPVS enables:
// ip_defrag in net/ipv4/ip_fragment.c over inet_fragment.c), so that the
// director schedules, looks up and counts whole datagrams.
//
// It keeps the kernel's rules: fragments are queued by (source,
// destination, protocol, IP ID); a queue lives ipfrag_time (30 s) from its
// first fragment, whatever arrives later; a fragment that lies wholly
// inside what a queue holds is a duplicate and only it is dropped; any
// other overlap, an end past the last fragment's, two different last
// fragments, an empty fragment, ECN codepoints that cannot mix and a
// datagram over 65535 bytes discard the whole queue (RFC 5722 style, "ip:
// fail fast on IP defrag errors"); while the fragments held exceed
// ipfrag_high_thresh (4 MB) every fragment is refused. The reassembled
// header is the first fragment's, with the total length, the ECN bits of
// all fragments, and DF only when the largest fragment carried DF
// (ip_frag_reasm); MaxFragSize is the kernel's frag_max_size, which the
// output path fragments the datagram to again.
//
// Memory is fixed: a Table preallocates its queues, each with room for the
// largest datagram, and neither Add nor Expire allocates. The package does
// no I/O and reads no clock: the time is passed in.
package defrag

import (
	"slices"
	"time"

	"github.com/lvslab/lvslab/dataplane/header"
)

// Kernel defaults (Documentation/networking/ip-sysctl.rst).
const (
	DefaultTimeout    = 30 * time.Second // net.ipv4.ipfrag_time
	DefaultHighThresh = 4 << 20          // net.ipv4.ipfrag_high_thresh
	DefaultQueues     = 64
	DefaultMaxDist    = 64 // net.ipv4.ipfrag_max_dist
)

// maxPayload is the most payload a datagram with the smallest header
// carries; a fragment ending beyond it can never be part of a legal one.
const maxPayload = 0xffff - header.IPv4MinimumSize

// maxLink is the longest link header kept in front of the IP header (an
// Ethernet header with one VLAN tag).
const maxLink = header.EthernetSize + 4

// maxRuns bounds a queue's runs of contiguous fragments (the kernel's
// frag_run list, bounded there only by memory).
const maxRuns = 512

// skbOverhead approximates what the kernel charges a fragment beyond its
// bytes (skb->truesize: the sk_buff and skb_shared_info).
const skbOverhead = 576

// Config sizes a Table; zero fields take the defaults.
type Config struct {
	Queues     int           // datagrams in reassembly at once
	Timeout    time.Duration // ipfrag_time
	HighThresh int           // ipfrag_high_thresh, in bytes charged as the kernel charges skbs
	// MaxDist is ipfrag_max_dist: a queue that holds fragments and sees
	// more than MaxDist fragments from its source (to any queue) between
	// two of its own starts over with the newer one (ip_frag_too_far).
	// Negative: no limit.
	MaxDist  int
	Headroom int // bytes kept free in front of a reassembled frame
}

// Reason is a counter of the table.
type Reason uint8

// Counters. ReasmFails of /proc/net/snmp is the sum of Overlap to
// NoMemory.
const (
	Requests    Reason = iota // fragments received (ReasmReqds)
	Reassembled               // datagrams reassembled (ReasmOKs)
	Duplicate                 // fragments dropped: wholly inside what the queue held
	Overlap                   // queues discarded: a fragment overlapped another (ReasmOverlaps)
	BadLength                 // queues discarded: an end past the last fragment's, two last fragments, an empty fragment
	Oversize                  // queues discarded: the datagram would exceed 65535 bytes
	BadECN                    // queues discarded: not-ECT fragments mixed with ECT or CE ones
	TooMany                   // queues discarded: more runs of fragments than a queue holds
	TooFar                    // queues started over: more than ipfrag_max_dist fragments from the source in between
	Timeout                   // queues expired (ReasmTimeout)
	NoMemory                  // fragments refused: over ipfrag_high_thresh, or every queue in use

	NumReasons
)

var reasonNames = [NumReasons]string{
	Requests:    "fragments",
	Reassembled: "reassembled",
	Duplicate:   "duplicate",
	Overlap:     "overlap",
	BadLength:   "bad_length",
	Oversize:    "oversize",
	BadECN:      "bad_ecn",
	TooMany:     "too_many_fragments",
	TooFar:      "too_far",
	Timeout:     "timeout",
	NoMemory:    "no_memory",
}

// String returns the counter's name.
func (r Reason) String() string {
	if r < NumReasons {
		return reasonNames[r]
	}
	return "invalid"
}

// Counters counts by Reason.
type Counters [NumReasons]uint64

// Map returns the non-zero counters by name.
func (c *Counters) Map() map[string]uint64 {
	m := map[string]uint64{}
	for r, n := range c {
		if n > 0 {
			m[Reason(r).String()] = n
		}
	}
	return m
}

type key struct {
	src, dst [4]byte
	id       uint16
	proto    uint8
}

// run is a stretch of fragments that arrived contiguous, each appended at
// the end of the previous one (the kernel's frag run).
type run struct{ start, end int32 }

// Queue flags (INET_FRAG_FIRST_IN, INET_FRAG_LAST_IN).
const (
	firstIn = 1 << iota
	lastIn
)

// IPFRAG_ECN_* bits: one per ECN codepoint seen.
const (
	ecnNotECT = 1 << iota
	ecnECT1
	ecnECT0
	ecnCE
)

type queue struct {
	key      key
	live     bool
	expires  time.Time
	flags    uint8
	ecn      uint8
	length   int // q.len: where the datagram's payload ends, as far as known
	meat     int // payload bytes held
	maxSize  int // largest fragment (header and payload kept)
	maxDF    int // largest fragment with DF
	mem      int
	since    int // fragments from the source since this queue's last one, this one included (peer rid − qp rid)
	firstEnd int // end of the first fragment's payload
	link     int // link header length of the first fragment
	hdr      [maxLink + header.IPv4MaximumSize]byte
	hdrLen   int
	runs     []run
	buf      []byte // [headroom][link][IP header] payload at dataOff
}

// Table reassembles datagrams. It is not safe for concurrent use.
type Table struct {
	cfg     Config
	dataOff int
	queues  []queue
	mem     int
	cnt     Counters
}

// New returns a table with every queue allocated.
func New(cfg Config) *Table {
	if cfg.Queues <= 0 {
		cfg.Queues = DefaultQueues
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.HighThresh <= 0 {
		cfg.HighThresh = DefaultHighThresh
	}
	if cfg.MaxDist == 0 {
		cfg.MaxDist = DefaultMaxDist
	}
	t := &Table{cfg: cfg, dataOff: cfg.Headroom + maxLink + header.IPv4MaximumSize, queues: make([]queue, cfg.Queues)}
	size := t.dataOff + maxPayload
	mem := make([]byte, cfg.Queues*size)
	for i := range t.queues {
		t.queues[i].buf = mem[i*size : (i+1)*size : (i+1)*size]
		t.queues[i].runs = make([]run, 0, maxRuns)
	}
	return t
}

// Counters returns the table's counters.
func (t *Table) Counters() Counters { return t.cnt }

// Mem returns the bytes the held fragments are charged.
func (t *Table) Mem() int { return t.mem }

// Datagram is a reassembled datagram: the frame (the first fragment's link
// header, then the IP datagram) at Buf[Off:Off+Len], with Off at least
// Config.Headroom. Its bytes stay valid until the next call to Add or
// Expire.
type Datagram struct {
	Buf         []byte
	Off, Len    int
	L3Off       int // the IP header, from Off
	MaxFragSize int // the largest fragment's IP length (frag_max_size)
}

// Frame returns the frame.
func (d *Datagram) Frame() []byte { return d.Buf[d.Off : d.Off+d.Len] }

// Add takes one fragment: frame holds it with its IPv4 header at l3 and
// n bytes of IP packet, already checked as ip_rcv checks them (version,
// IHL, total length, header checksum). It returns the datagram the
// fragment completed, if it did.
func (t *Table) Add(frame []byte, l3, n int, now time.Time) (Datagram, bool) {
	t.cnt[Requests]++
	if t.mem > t.cfg.HighThresh {
		t.cnt[NoMemory]++
		return Datagram{}, false
	}
	if l3 < 0 || l3 > maxLink || n < header.IPv4MinimumSize || l3+n > len(frame) {
		t.cnt[BadLength]++
		return Datagram{}, false
	}
	ip := header.IPv4(frame[l3 : l3+n])
	if hl := ip.HeaderLength(); hl < header.IPv4MinimumSize || hl > n {
		t.cnt[BadLength]++
		return Datagram{}, false
	}
	k := key{src: [4]byte(ip[12:16]), dst: [4]byte(ip[16:20]), id: ip.ID(), proto: ip.Protocol()}
	q := t.find(k, now)
	if q == nil {
		t.cnt[NoMemory]++
		return Datagram{}, false
	}
	return t.queue(q, frame, l3, n, now)
}

// find returns the live queue of k, or a new one, counting the fragment
// in every queue of its source.
func (t *Table) find(k key, now time.Time) *queue {
	var free, found *queue
	for i := range t.queues {
		q := &t.queues[i]
		switch {
		case !q.live:
			if free == nil {
				free = q
			}
			continue
		case q.key == k && now.Before(q.expires):
			found = q
		}
		if q.key.src == k.src {
			q.since++
		}
	}
	if found != nil {
		return found
	}
	if free != nil {
		*free = queue{key: k, live: true, expires: now.Add(t.cfg.Timeout), buf: free.buf, runs: free.runs[:0]}
	}
	return free
}

// restart empties a queue that waited too long among its source's other
// fragments (ip_frag_reinit): its fragments are dropped, its timer starts
// again.
func (t *Table) restart(q *queue, now time.Time) {
	t.cnt[TooFar]++
	t.mem -= q.mem
	*q = queue{key: q.key, live: true, expires: now.Add(t.cfg.Timeout), buf: q.buf, runs: q.runs[:0]}
}

// queue is ip_frag_queue.
func (t *Table) queue(q *queue, frame []byte, l3, n int, now time.Time) (Datagram, bool) {
	if t.cfg.MaxDist > 0 && q.since > t.cfg.MaxDist && len(q.runs) > 0 {
		t.restart(q, now)
	}
	q.since = 0
	ip := header.IPv4(frame[l3 : l3+n])
	ff := ip.FlagsFragmentOffset()
	offset := ip.FragmentOffset()
	ihl := ip.HeaderLength()
	end := offset + n - ihl
	if ff&header.IPv4FlagMF == 0 {
		// The last fragment: nothing held may lie beyond it, and there
		// is only one.
		if end < q.length || q.flags&lastIn != 0 && end != q.length {
			return t.discard(q, BadLength)
		}
		q.flags |= lastIn
		q.length = end
	} else {
		end &^= 7
		if end > q.length {
			if q.flags&lastIn != 0 {
				return t.discard(q, BadLength) // bits beyond the end
			}
			q.length = end
		}
	}
	if end == offset {
		return t.discard(q, BadLength)
	}
	if end > maxPayload {
		return t.discard(q, Oversize)
	}
	switch t.insert(q, offset, end) {
	case dup:
		t.cnt[Duplicate]++
		return Datagram{}, false
	case overlap:
		return t.discard(q, Overlap)
	case full:
		return t.discard(q, TooMany)
	}
	copy(q.buf[t.dataOff+offset:], frame[l3+ihl:l3+ihl+end-offset])
	q.ecn |= 1 << (ip.TOS() & 3)
	size := end - offset + ihl
	q.maxSize = max(q.maxSize, size)
	if ff&header.IPv4FlagDF != 0 {
		q.maxDF = max(q.maxDF, size)
	}
	charge := n + l3 + skbOverhead
	q.mem += charge
	t.mem += charge
	q.meat += end - offset
	if offset == 0 {
		q.flags |= firstIn
		q.link, q.hdrLen, q.firstEnd = l3, l3+ihl, end
		copy(q.hdr[:], frame[:l3+ihl])
	}
	if q.flags == firstIn|lastIn && q.meat == q.length {
		return t.reassemble(q)
	}
	return Datagram{}, false
}

type insertion uint8

const (
	inserted insertion = iota
	dup
	overlap
	full
)

// insert records [offset, end) in the queue's runs as
// inet_frag_queue_insert does: appended to the last run when it follows it
// exactly, a new run otherwise; a fragment inside one run is a duplicate,
// any other intersection an overlap.
func (t *Table) insert(q *queue, offset, end int) insertion {
	o, e := int32(offset), int32(end)
	if len(q.runs) > 0 {
		last := &q.runs[len(q.runs)-1]
		if last.end < e {
			switch {
			case o < last.end:
				return overlap
			case o == last.end:
				last.end = e
				return inserted
			}
			if len(q.runs) == cap(q.runs) {
				return full
			}
			q.runs = append(q.runs, run{o, e})
			return inserted
		}
	}
	// The first run ending after offset is the only one that can hold
	// the fragment; any run it meets makes a duplicate or an overlap.
	i, _ := slices.BinarySearchFunc(q.runs, o, func(r run, o int32) int {
		if r.end <= o {
			return -1
		}
		return 1
	})
	if i < len(q.runs) && q.runs[i].start < e {
		if q.runs[i].start <= o && e <= q.runs[i].end {
			return dup
		}
		return overlap
	}
	if len(q.runs) == cap(q.runs) {
		return full
	}
	q.runs = slices.Insert(q.runs, i, run{o, e})
	return inserted
}

// ecnTable is ip_frag_ecn_table: the ECN codepoint the datagram gets from
// the ones its fragments carried, or 0xff for a mix that cannot be.
var ecnTable = func() (t [16]uint8) {
	for set := range t {
		switch {
		case set&ecnNotECT != 0 && set&^ecnNotECT != 0:
			t[set] = 0xff
		case set&ecnCE != 0 && set&(ecnECT0|ecnECT1) != 0:
			t[set] = 3 // INET_ECN_CE
		}
	}
	return t
}()

// reassemble is ip_frag_reasm: the first fragment's headers in front of
// the payload, then the datagram's length, ECN and DF.
func (t *Table) reassemble(q *queue) (Datagram, bool) {
	ihl := q.hdrLen - q.link
	if ihl+q.length > 0xffff {
		return t.discard(q, Oversize)
	}
	ecn := ecnTable[q.ecn]
	if ecn == 0xff {
		return t.discard(q, BadECN)
	}
	off := t.dataOff - q.hdrLen
	copy(q.buf[off:], q.hdr[:q.hdrLen])
	ip := header.IPv4(q.buf[off+q.link : t.dataOff+q.length])
	ip.SetTotalLength(uint16(ihl + q.length))
	ip.SetTOS(ip.TOS() | ecn)
	var ff uint16
	if q.maxDF == q.maxSize {
		ff = header.IPv4FlagDF
	}
	ip.SetFlagsFragmentOffset(ff)
	ip.SetChecksum(0)
	ip.SetChecksum(ip.CalculateChecksum())
	d := Datagram{Buf: q.buf, Off: off, Len: q.hdrLen + q.length, L3Off: q.link, MaxFragSize: q.maxSize}
	t.free(q)
	t.cnt[Reassembled]++
	return d, true
}

// discard kills a queue (inet_frag_kill) and counts why.
func (t *Table) discard(q *queue, r Reason) (Datagram, bool) {
	t.cnt[r]++
	t.free(q)
	return Datagram{}, false
}

func (t *Table) free(q *queue) {
	t.mem -= q.mem
	q.mem, q.live = 0, false
}

// Expire ends the queues whose time is up (ip_expire). For each that held
// its first fragment, first is called with that fragment's frame (valid
// during the call): the kernel answers it with ICMP "fragment reassembly
// time exceeded" when the datagram was for a local address.
func (t *Table) Expire(now time.Time, first func(frame []byte, l3 int)) {
	for i := range t.queues {
		q := &t.queues[i]
		if !q.live || now.Before(q.expires) {
			continue
		}
		t.cnt[Timeout]++
		if q.flags&firstIn != 0 && first != nil {
			off := t.dataOff - q.hdrLen
			copy(q.buf[off:], q.hdr[:q.hdrLen])
			first(q.buf[off:t.dataOff+q.firstEnd], q.link)
		}
		t.free(q)
	}
}
