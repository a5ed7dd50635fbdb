package xmit

import (
	"github.com/lvslab/lvslab/dataplane/header"
	"github.com/lvslab/lvslab/dataplane/parse"
)

// FragmentIPv4 fragments the IPv4 packet p of frame (Hop.Check said
// Fragment: no DF, larger than mtu) as the kernel's ip_fragment does:
// every fragment but the last carries a multiple of 8 payload bytes, the
// fragment offsets and MF are set (an existing offset and MF of the packet
// are kept for its last piece), options without the copy flag are replaced
// by no-ops after the first fragment, and each header checksum is
// recomputed. Fragment i is written as a whole frame into outs[i], its
// length into lens[i]. It returns the number of fragments, or 0 if outs or
// lens are too few or too small, or the header leaves no room for 8 bytes.
func FragmentIPv4(outs [][]byte, lens []int, frame []byte, p *parse.Packet, mtu int) int {
	ip := header.IPv4(frame[p.L3Off:])
	hl := ip.HeaderLength()
	chunk := (mtu - hl) &^ 7
	if !p.IsIPv4() || chunk <= 0 {
		return 0
	}
	data := frame[p.L3Off+hl : p.L3Off+p.Len]
	n := (len(data) + chunk - 1) / chunk
	if n > len(outs) || n > len(lens) {
		return 0
	}
	orig := ip.FlagsFragmentOffset()
	base := int(orig&0x1fff) * 8
	for i := range n {
		lo, hi := i*chunk, min((i+1)*chunk, len(data))
		size := p.L3Off + hl + hi - lo
		out := outs[i]
		if len(out) < size {
			return 0
		}
		copy(out, frame[:p.L3Off+hl])
		copy(out[p.L3Off+hl:], data[lo:hi])
		lens[i] = size
		f := header.IPv4(out[p.L3Off:])
		flags := orig & (header.IPv4FlagDF | header.IPv4FlagMF) // the last piece keeps the packet's MF
		if i < n-1 {
			flags |= header.IPv4FlagMF
		}
		f.SetFlagsFragmentOffset(flags | uint16((base+lo)/8))
		f.SetTotalLength(uint16(size - p.L3Off))
		if i > 0 {
			noCopyOptions(f.Options())
		}
		f.SetChecksum(0)
		f.SetChecksum(f.CalculateChecksum())
	}
	return n
}

// IPv4 option kinds (RFC 791).
const (
	optEnd  = 0
	optNOP  = 1
	optCopy = 0x80
)

// noCopyOptions replaces options without the copy flag by no-ops
// (ip_options_fragment).
func noCopyOptions(o []byte) {
	for i := 0; i < len(o); {
		switch o[i] {
		case optEnd:
			return
		case optNOP:
			i++
			continue
		}
		if i+1 >= len(o) || o[i+1] < 2 || i+int(o[i+1]) > len(o) {
			return // malformed: leave the rest as it is
		}
		l := int(o[i+1])
		if o[i]&optCopy == 0 {
			for j := i; j < i+l; j++ {
				o[j] = optNOP
			}
		}
		i += l
	}
}
