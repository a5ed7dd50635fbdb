package xmit

import (
	"testing"

	"github.com/lvslab/lvslab/dataplane/header"
	ht "github.com/lvslab/lvslab/dataplane/header/headertest"
	"github.com/lvslab/lvslab/dataplane/parse"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestFragmentIPv4(t *testing.T) {
	payload := make([]byte, 3000)
	for i := range payload {
		payload[i] = byte(i)
	}
	f := ht.UDP(ht.Spec{Src: cip, Dst: vip, SrcPort: 1, DstPort: 2, Payload: payload})
	p := mustParse(t, f, nil)
	outs := make([][]byte, 4)
	for i := range outs {
		outs[i] = make([]byte, 1600)
	}
	lens := make([]int, 4)
	n := FragmentIPv4(outs, lens, f, p, 1500)
	require.Equal(t, 3, n, "3008 bytes of UDP in 1480-byte pieces")
	var data []byte
	for i := range n {
		fr := outs[i][:lens[i]]
		ip := header.IPv4(fr[14:])
		assert.True(t, ip.IsChecksumValid())
		assert.LessOrEqual(t, int(ip.TotalLength()), 1500)
		assert.Equal(t, i*1480, ip.FragmentOffset())
		assert.Equal(t, i < n-1, ip.FlagsFragmentOffset()&header.IPv4FlagMF != 0, "MF on all but the last")
		var q parse.Packet
		assert.Equal(t, parse.Fragment, parse.Frame(fr, nil, &q))
		data = append(data, ip.Payload()...)
	}
	assert.Equal(t, f[34:p.L3Off+p.Len], data, "the pieces make the datagram")
	assert.Zero(t, FragmentIPv4(outs[:1], lens, f, p, 1500), "too few buffers")
}

func TestNoCopyOptions(t *testing.T) {
	// Record route (7, not copied), then loose source route (0x83, copied), end.
	o := []byte{7, 7, 4, 0, 0, 0, 0, 0x83, 3, 4, 0}
	noCopyOptions(o)
	assert.Equal(t, []byte{1, 1, 1, 1, 1, 1, 1, 0x83, 3, 4, 0}, o)
}
