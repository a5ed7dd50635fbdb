package parse

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/lvslab/lvslab/dataplane/header"
	ht "github.com/lvslab/lvslab/dataplane/header/headertest"
	"github.com/stretchr/testify/require"
)

var updateCorpus = flag.Bool("update", false, "rewrite the committed fuzz seed corpus under testdata/fuzz")

// seedFrames are well-formed frames of every kind the parser knows; the
// fuzzer mutates them into the malformed ones.
func seedFrames() [][]byte {
	udp := ht.UDP(ht.Spec{Src: cip, Dst: vip, SrcPort: 5353, DstPort: 53, Payload: []byte("q")})
	tcp6 := ht.TCP(ht.Spec{Src: cip6, Dst: vip6, SrcPort: 2, DstPort: 3})
	return [][]byte{
		ht.TCP(ht.Spec{Src: cip, Dst: vip, SrcPort: 40000, DstPort: 443, TCPFlags: header.TCPFlagSYN}),
		udp,
		ht.SCTPInit(ht.Spec{Src: cip, Dst: vip, SrcPort: 7, DstPort: 9}),
		tcp6,
		ht.UDP(ht.Spec{Src: cip6, Dst: vip6, SrcPort: 4, DstPort: 5}),
		ht.ICMPError(rip, cip, 3, 3, 0, udp, 0),
		ht.ICMPError(rip, cip, 3, 4, 1400, udp, 0),
		ht.ICMPError(vip6, cip6, 2, 0, 1280, tcp6, 0),
		ht.ICMPError(cip, vip, 8, 0, 1, nil14, 0),
	}
}

func vnetSeed(flags, gso uint8, start, off, size uint16) []byte {
	h := make(header.VirtioNetHdr, header.VirtioNetHdrSize)
	h.SetFlags(flags)
	h.SetGSOType(gso)
	h.SetCsumStart(start)
	h.SetCsumOffset(off)
	h.SetGSOSize(size)
	return h
}

// FuzzFrame feeds arbitrary frames and offload descriptions to Frame: it
// must never panic, and what it accepts must be consistent.
func FuzzFrame(f *testing.F) {
	for _, fr := range seedFrames() {
		f.Add(fr, []byte(nil))
		f.Add(fr, vnetSeed(1, header.VirtioNetHdrGSOTCPv4, 34, 16, 1448))
	}
	f.Fuzz(func(t *testing.T, frame, vnet []byte) {
		var v header.VirtioNetHdr
		if len(vnet) >= header.VirtioNetHdrSize {
			v = vnet[:header.VirtioNetHdrSize]
		}
		var p Packet
		r := Frame(frame, v, &p)
		if r >= NumReasons {
			t.Fatalf("reason %d out of range", r)
		}
		if r != OK {
			return
		}
		if p.Kind == KindOther {
			return
		}
		if p.L3Off+p.Len > len(frame) || p.L4Off >= p.L3Off+p.Len {
			t.Fatalf("offsets outside the frame: %+v (frame %d)", p, len(frame))
		}
		if p.Kind == KindICMPError && (p.InnerL4Off+8 > p.L3Off+p.Len || p.InnerL3Off <= p.L4Off) {
			t.Fatalf("quote outside the packet: %+v", p)
		}
	})
}

// TestSeedCorpus keeps testdata/fuzz/FuzzFrame in step with seedFrames;
// run with -update to rewrite it.
func TestSeedCorpus(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzFrame")
	if *updateCorpus {
		require.NoError(t, os.MkdirAll(dir, 0o755))
		for i, fr := range seedFrames() {
			for j, v := range [][]byte{nil, vnetSeed(1, header.VirtioNetHdrGSOTCPv4, 34, 16, 1448)} {
				body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n[]byte(%q)\n", fr, v)
				require.NoError(t, os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed-%02d-%d", i, j)), []byte(body), 0o644))
			}
		}
	}
	ents, err := os.ReadDir(dir)
	require.NoError(t, err, "seed corpus missing: go test -run TestSeedCorpus -update")
	require.GreaterOrEqual(t, len(ents), 2*len(seedFrames()))
}
