package loadgen

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lvslab/lvslab/loadgen/wire"
	"github.com/lvslab/lvslab/reports/metrics"
)

// TestNginxAsRealServer attributes nginx's responses through a header the
// configuration names (a real program, not the built-in server), with new
// connections and with keep-alive.
func TestNginxAsRealServer(t *testing.T) {
	nginx, err := exec.LookPath("nginx")
	if err != nil {
		t.Skip("nginx is not installed (Debian package nginx-light)")
	}
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := netip.MustParseAddrPort(ln.Addr().String())
	ln.Close()
	conf := fmt.Sprintf(`daemon off;
master_process off;
worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log;
events { worker_connections 1024; }
http {
  access_log off;
  keepalive_requests 1000;
  client_body_temp_path %[1]s;
  proxy_temp_path %[1]s;
  fastcgi_temp_path %[1]s;
  uwsgi_temp_path %[1]s;
  scgi_temp_path %[1]s;
  server {
    listen %[2]s;
    location / { add_header X-Backend nginx-1 always; return 200 "hello from nginx\n"; }
  }
}
`, dir, addr)
	path := filepath.Join(dir, "nginx.conf")
	require.NoError(t, os.WriteFile(path, []byte(conf), 0o644))
	cmd := exec.Command(nginx, "-p", dir, "-c", path)
	cmd.Stderr = os.Stderr
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	require.Eventually(t, func() bool {
		c, err := net.Dial("tcp", addr.String())
		if err == nil {
			c.Close()
		}
		return err == nil
	}, 10*time.Second, 20*time.Millisecond, "nginx listens")

	for _, keep := range []bool{false, true} {
		res := run(t, Config{Target: addr, Kind: wire.HTTP, Concurrency: 4, Duration: 300 * time.Millisecond, KeepAlive: keep, Workers: 1, ServerHeader: "X-Backend"})
		require.Zero(t, res.Errors(), "%v", res.Outcomes)
		sc := res.Servers["nginx-1"]
		require.NotNil(t, sc, "%v", res.Servers)
		assert.Equal(t, res.Outcomes[metrics.OK], sc.Requests)
		if keep {
			assert.LessOrEqual(t, sc.Connections, sc.Requests/1000+8, "kept-alive connections: nginx ends each after 1000 requests")
		} else {
			assert.Equal(t, sc.Requests, sc.Connections)
		}
	}
}
