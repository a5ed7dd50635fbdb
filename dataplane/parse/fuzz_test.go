package parse

import (
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/lvslab/lvslab/dataplane/header"
	ht "github.com/lvslab/lvslab/dataplane/header/headertest"
	"github.com/stretchr/testify/require"
)

var updateCorpus = flag.Bool("update", false, "rewrite the committed fuzz seed corpus under testdata/fuzz")

// gsoSeed is a TCPv4 GSO description for the seed frames.
func gsoSeed() []byte {
	h := make(header.VirtioNetHdr, header.VirtioNetHdrSize)
	h.SetFlags(header.VirtioNetHdrFNeedsCsum)
	h.SetGSOType(header.VirtioNetHdrGSOTCPv4)
	h.SetCsumStart(34)
	h.SetCsumOffset(header.TCPChecksumOffset)
	h.SetGSOSize(1448)
	return h
}

// FuzzFrame feeds arbitrary frames and offload descriptions to Frame: it
// must never panic, and what it accepts must lie inside the frame.
func FuzzFrame(f *testing.F) {
	for _, fr := range ht.Seeds() {
		f.Add(fr, []byte(nil))
		f.Add(fr, gsoSeed())
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
		if r != OK || p.Kind == KindOther {
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

// TestSeedCorpus keeps testdata/fuzz/FuzzFrame in step with the seeds; run
// with -update to rewrite it.
func TestSeedCorpus(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzFrame")
	if *updateCorpus {
		require.NoError(t, ht.WriteCorpus(dir, gsoSeed()))
	}
	ents, err := os.ReadDir(dir)
	require.NoError(t, err, "seed corpus missing: go test -run TestSeedCorpus -update")
	require.GreaterOrEqual(t, len(ents), 2*len(ht.Seeds()))
}
