package xmit

import (
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/lvslab/lvslab/dataplane/header"
	ht "github.com/lvslab/lvslab/dataplane/header/headertest"
	"github.com/lvslab/lvslab/dataplane/parse"
	"github.com/stretchr/testify/require"
)

var updateCorpus = flag.Bool("update", false, "rewrite the committed fuzz seed corpus under testdata/fuzz")

func partialSeed() []byte {
	h := make(header.VirtioNetHdr, header.VirtioNetHdrSize)
	h.SetFlags(header.VirtioNetHdrFNeedsCsum)
	h.SetCsumStart(34)
	h.SetCsumOffset(header.TCPChecksumOffset)
	return h
}

// FuzzTransmit runs every transmitter over whatever the parser accepts:
// none may panic, and each result must parse again as what it claims to be.
func FuzzTransmit(f *testing.F) {
	for _, fr := range ht.Seeds() {
		f.Add(fr, []byte(nil))
		f.Add(fr, partialSeed())
	}
	reply := make([]byte, 2048)
	buf := make([]byte, 4096)
	segs := make([][]byte, 64)
	for i := range segs {
		segs[i] = make([]byte, 4096)
	}
	lens := make([]int, len(segs))
	f.Fuzz(func(t *testing.T, frame, vnet []byte) {
		if len(frame) > len(buf)-TunnelHeadroom {
			return
		}
		var v header.VirtioNetHdr
		if len(vnet) >= header.VirtioNetHdrSize {
			v = append(header.VirtioNetHdr(nil), vnet[:header.VirtioNetHdrSize]...)
		}
		var p parse.Packet
		if parse.Frame(frame, v, &p) != parse.OK || p.Kind == parse.KindOther {
			return
		}
		r6 := p.IsIPv4()
		to, toPort := rip, uint16(8080)
		if !r6 {
			to = rip6
		}
		f := append([]byte(nil), frame...)
		q := p
		var again parse.Packet
		switch p.Kind {
		case parse.KindTransport:
			NATIn(f, v, &q, to, toPort)
			if r := parse.Frame(f, v, &again); r != parse.OK || again.Flow != q.Flow {
				t.Fatalf("NAT result does not parse back: %v %+v vs %+v", r, again.Flow, q.Flow)
			}
		case parse.KindICMPError:
			NATICMPIn(f, &q, to, toPort)
			if r := parse.Frame(f, v, &again); r != parse.OK || again.Inner != q.Inner {
				t.Fatalf("ICMP relay result does not parse back: %v", r)
			}
		}
		if p.Tunneled {
			if n := TunnelICMP(reply, frame, &p, 1500); n > 0 {
				if r := parse.Frame(reply[:n], nil, &again); r != parse.OK || again.Inner != p.Inner {
					t.Fatalf("tunnel ICMP answer does not parse: %v", r)
				}
			}
		}
		if n := SegmentTCP(segs, lens, frame, v, &p); n > 0 {
			for i := range n {
				if r := parse.Frame(segs[i][:lens[i]], nil, &again); r != parse.OK || again.Flow != p.Flow {
					t.Fatalf("segment %d does not parse: %v", i, r)
				}
			}
		}
		q = p
		f = append(f[:0], frame...)
		verdict, n := (Hop{MTU: 576, Tunnel: true}).Check(reply, f, v, &q)
		switch verdict {
		case Reply:
			if r := parse.Frame(reply[:n], nil, &again); r != parse.OK || again.Kind != parse.KindICMPError {
				t.Fatalf("our ICMP error does not parse: %v", r)
			}
		case Fragment:
			if k := FragmentIPv4(segs, lens, f, &q, 556); k > 0 {
				for i := range k {
					if r := parse.Frame(segs[i][:lens[i]], nil, &again); r != parse.Fragment {
						t.Fatalf("fragment %d parses as %v", i, r)
					}
				}
			}
		}
		if !p.IsIPv4() || v != nil && v.IsGSO() {
			return
		}
		copy(buf[TunnelHeadroom:], frame)
		off, n := Tunnel{Src: dip, RIP: rip}.Encapsulate(buf, TunnelHeadroom, len(frame), v, &q, 1)
		if r := parse.Frame(buf[off:off+n], nil, &again); r != parse.UnknownProtocol || again.Proto != header.IPv4ProtocolIPIP {
			t.Fatalf("tunnel packet does not parse as IPIP: %v", r)
		}
	})
}

// TestSeedCorpus keeps testdata/fuzz/FuzzTransmit in step with the seeds;
// run with -update to rewrite it.
func TestSeedCorpus(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzTransmit")
	if *updateCorpus {
		require.NoError(t, ht.WriteCorpus(dir, partialSeed()))
	}
	ents, err := os.ReadDir(dir)
	require.NoError(t, err, "seed corpus missing: go test -run TestSeedCorpus -update")
	require.GreaterOrEqual(t, len(ents), 2*len(ht.Seeds()))
}
