package parse

// Reason is why a frame was not parsed into a flow. OK is success.
type Reason uint8

// Reasons. Drop reports which ones the kernel drops; the others it passes
// to its local stack (the director's kernel drops those too, by design).
const (
	OK Reason = iota
	NotIP
	UnknownProtocol
	ICMPQuoteGarbage
	Fragment
	Truncated
	BadVersion
	BadIHL
	BadTotalLength
	BadIPChecksum
	BadExtHeader
	BadL4Header
	BadICMPChecksum
	BadVnetHdr

	NumReasons
)

var reasonNames = [NumReasons]string{
	OK:               "ok",
	NotIP:            "not_ip",
	UnknownProtocol:  "unknown_protocol",
	ICMPQuoteGarbage: "icmp_quote_garbage",
	Fragment:         "fragment",
	Truncated:        "truncated",
	BadVersion:       "bad_ip_version",
	BadIHL:           "bad_ihl",
	BadTotalLength:   "bad_total_length",
	BadIPChecksum:    "bad_ip_checksum",
	BadExtHeader:     "bad_ipv6_ext_header",
	BadL4Header:      "bad_l4_header",
	BadICMPChecksum:  "bad_icmp_checksum",
	BadVnetHdr:       "bad_vnet_hdr",
}

// String returns the reason's counter name.
func (r Reason) String() string {
	if r < NumReasons {
		return reasonNames[r]
	}
	return "invalid"
}

// Drop reports whether the kernel drops such a packet before or in IPVS.
// NotIP, UnknownProtocol and ICMPQuoteGarbage are passed to the local stack
// by the kernel; a Fragment goes to reassembly first (nf_defrag, package
// defrag for IPv4; this director drops IPv6 fragments).
func (r Reason) Drop() bool { return r > Fragment }

// Counters counts frames by reason. One worker owns one Counters; sum them
// for a report.
type Counters [NumReasons]uint64

// Add counts one frame with reason r.
func (c *Counters) Add(r Reason) { c[r]++ }

// Merge adds o into c.
func (c *Counters) Merge(o *Counters) {
	for i := range c {
		c[i] += o[i]
	}
}
