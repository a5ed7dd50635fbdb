package wire

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestPrefixRoundTrip(t *testing.T) {
	b := make([]byte, PrefixLen)
	PutPrefix(b, 1000, 7, 503, "rs1")
	p := Prefix(b)
	require.True(t, p.Valid())
	assert.Equal(t, uint32(1000), p.Length())
	assert.Equal(t, uint32(7), p.Seq())
	assert.Equal(t, uint16(503), p.Status())
	assert.Equal(t, "rs1", string(p.ID()))

	PutPrefix(b, 40, 0, 200, "a-name-longer-than-twenty-four-bytes")
	assert.Equal(t, "a-name-longer-than-twent", string(Prefix(b).ID()), "an id is cut at MaxIDLen")
	assert.False(t, Prefix(b[:PrefixLen-1]).Valid(), "a short prefix is not valid")
	assert.False(t, Prefix([]byte("HTTP/1.1 200 OK\r\n\r\n....................")).Valid())
}

func TestRequestRoundTrip(t *testing.T) {
	b := make([]byte, RequestLen)
	PutRequest(b, 200, FlagKeepAlive, 42)
	r := Request(b)
	require.True(t, r.Valid())
	assert.Equal(t, uint32(200), r.Length())
	assert.Equal(t, uint32(FlagKeepAlive), r.Flags())
	assert.Equal(t, uint32(42), r.Seq())
	assert.False(t, Request([]byte("GET / HTTP/1.1\r\n")).Valid())
}

func TestParseKind(t *testing.T) {
	for _, k := range []Kind{HTTP, TCP, UDP} {
		got, err := ParseKind(k.String())
		require.NoError(t, err)
		assert.Equal(t, k, got)
	}
	_, err := ParseKind("sctp")
	assert.ErrorContains(t, err, `"sctp"`)
}
