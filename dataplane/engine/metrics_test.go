package engine

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeDirector answers every request on a control socket with s.
func fakeDirector(t *testing.T, s Stats) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "director.sock")
	l, err := net.Listen("unix", path)
	require.NoError(t, err)
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			var req Request
			if json.NewDecoder(c).Decode(&req) == nil && req.Kind == KindStats {
				json.NewEncoder(c).Encode(Response{Stats: &s})
			}
			c.Close()
		}
	}()
	return path
}

func scrape(t *testing.T, h http.Handler) string {
	t.Helper()
	srv := httptest.NewServer(h)
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return string(b)
}

func TestMetrics(t *testing.T) {
	s := Stats{Frames: 10, In: 4, Out: 3, NoRoute: 1,
		Parse:      map[string]uint64{"ok": 7, "fragment": 2, "bad_ip_checksum": 1},
		Defrag:     map[string]uint64{"fragments": 2, "timeout": 1},
		Interfaces: []InterfaceStats{{Name: "eth0", Packets: 10, Drops: 5}}}
	body := scrape(t, MetricsHandler(fakeDirector(t, s), "director"))
	for _, line := range []string{
		`lvslab_director_up{director="director"} 1`,
		`lvslab_director_packets_total{counter="frames",director="director"} 10`,
		`lvslab_director_packets_total{counter="in",director="director"} 4`,
		`lvslab_director_reassembly_total{counter="timeout",director="director"} 1`,
		`lvslab_director_drops_total{director="director",reason="defrag.timeout"} 1`,
		`lvslab_director_drops_total{director="director",reason="parse.bad_ip_checksum"} 1`,
		`lvslab_director_drops_total{director="director",reason="no_route"} 1`,
		`lvslab_director_drops_total{director="director",reason="socket.eth0"} 5`,
		`lvslab_director_socket_packets_total{director="director",interface="eth0"} 10`,
	} {
		assert.Contains(t, body, line+"\n")
	}
	assert.NotContains(t, body, `reason="parse.fragment"`, "fragments are reassembled, not dropped")

	down := scrape(t, MetricsHandler(filepath.Join(t.TempDir(), "none.sock"), "director"))
	assert.Contains(t, down, `lvslab_director_up{director="director"} 0`+"\n")
}
