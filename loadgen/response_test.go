package loadgen

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lvslab/lvslab/loadgen/wire"
)

func httpResponse() *response {
	return &response{kind: wire.HTTP, header: "x-real-server"}
}

// feedSplit feeds msg cut at every position, and whole; each way must parse the same.
func parseEveryWay(t *testing.T, msg string, closeAtEnd bool) []*response {
	t.Helper()
	var out []*response
	for cut := 0; cut <= len(msg); cut++ {
		r := httpResponse()
		done, err := r.feed([]byte(msg[:cut]))
		require.NoError(t, err)
		if !done {
			done, err = r.feed([]byte(msg[cut:]))
			require.NoError(t, err, "cut at %d", cut)
		}
		if !done && closeAtEnd {
			done, err = r.eof()
			require.NoError(t, err)
		}
		require.True(t, done, "cut at %d", cut)
		out = append(out, r)
	}
	return out
}

func TestHTTPResponses(t *testing.T) {
	for _, tc := range []struct {
		name       string
		msg        string
		closeAtEnd bool
		status     int
		server     string
		close      bool
	}{
		{"content-length body with the server named", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Real-Server: rs1\r\n\r\nhello", false, 200, "rs1", false},
		{"header names are case-insensitive", "HTTP/1.1 200 OK\r\ncontent-length: 0\r\nx-real-server:  rs2 \r\nConnection: close\r\n\r\n", false, 200, "rs2", true},
		{"chunked body with an extension and a trailer", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\nhello\r\nA\r\n0123456789\r\n0\r\nT: v\r\n\r\n", false, 200, "", false},
		{"body up to the close", "HTTP/1.1 200 OK\r\nX-Real-Server: nginx-1\r\n\r\nbody", true, 200, "nginx-1", true},
		{"an error status", "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n", false, 503, "", false},
		{"no body for 204", "HTTP/1.1 204 No Content\r\n\r\n", false, 204, "", false},
		{"an interim 100 before the response", "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", false, 200, "", false},
		{"HTTP/1.0 closes", "HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nx", false, 200, "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, r := range parseEveryWay(t, tc.msg, tc.closeAtEnd) {
				assert.Equal(t, tc.status, r.status)
				assert.Equal(t, tc.server, string(r.server()))
				assert.Equal(t, tc.close, r.close)
				assert.Equal(t, len(tc.msg), r.got)
			}
		})
	}
}

func TestHTTPMalformed(t *testing.T) {
	for _, msg := range []string{
		"SSH-2.0-OpenSSH\r\n\r\n",
		"HTTP/1.1 2x0 OK\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
	} {
		_, err := httpResponse().feed([]byte(msg))
		assert.Error(t, err, "%q", msg)
	}
	r := httpResponse()
	_, err := r.feed([]byte("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"))
	require.NoError(t, err)
	_, err = r.eof()
	assert.ErrorIs(t, err, errShort, "a body cut short is a short read")
}

func TestPrefixResponse(t *testing.T) {
	msg := make([]byte, 100)
	wire.PutPrefix(msg, 100, 0, 200, "rs7")
	for cut := 0; cut <= len(msg); cut++ {
		r := &response{kind: wire.TCP}
		done, err := r.feed(msg[:cut])
		require.NoError(t, err)
		if !done {
			done, err = r.feed(msg[cut:])
			require.NoError(t, err)
		}
		require.True(t, done)
		assert.Equal(t, "rs7", string(r.server()))
		assert.Equal(t, 100, r.got)
	}
	r := &response{kind: wire.TCP}
	done, err := r.feed([]byte("a banner from a program that is not ours, longer than forty bytes\n"))
	require.NoError(t, err)
	assert.False(t, done, "a foreign server's response runs to the close")
	done, _ = r.eof()
	assert.True(t, done)
	assert.Nil(t, r.server())
}

func FuzzHTTPResponse(f *testing.F) {
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Real-Server: rs1\r\n\r\nhello"), 7)
	f.Add([]byte("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"), 30)
	f.Add([]byte("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No\r\n\r\n"), 3)
	f.Fuzz(func(t *testing.T, msg []byte, cut int) {
		if cut < 0 || cut > len(msg) {
			cut = len(msg) / 2
		}
		whole := httpResponse()
		doneW, errW := whole.feed(msg)
		split := httpResponse()
		doneS, errS := split.feed(msg[:cut])
		if errS == nil && !doneS {
			doneS, errS = split.feed(msg[cut:])
		}
		// Where both parse cleanly, cutting the input must not change the result.
		if errW == nil && errS == nil {
			assert.Equal(t, doneW, doneS)
			assert.Equal(t, whole.status, split.status)
			assert.Equal(t, whole.server(), split.server())
		}
		assert.LessOrEqual(t, whole.got, len(msg))
	})
}

func BenchmarkHTTPResponseFeed(b *testing.B) {
	msg := []byte("HTTP/1.1 200 OK\r\nContent-Length: 100\r\nX-Real-Server: rs1\r\nDate: Sat, 21 Nov 2026 22:44:23 GMT\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" + string(make([]byte, 100)))
	r := httpResponse()
	b.ReportAllocs()
	b.SetBytes(int64(len(msg)))
	for b.Loop() {
		r.reset()
		if done, err := r.feed(msg); !done || err != nil {
			b.Fatal(done, err)
		}
	}
}
