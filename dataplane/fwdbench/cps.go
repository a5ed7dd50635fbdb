package fwdbench

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// HTTPServer is nginx in the lab's server namespace, answering every
// request with a few bytes on port 80 of each of its addresses (the RIP,
// and the VIP on lo for direct routing).
type HTTPServer struct {
	cmd *exec.Cmd
	dir string
}

// StartHTTPServer starts nginx and waits until it listens.
func (l *Lab) StartHTTPServer() (*HTTPServer, error) {
	dir, err := os.MkdirTemp("", "lvsbench-nginx")
	if err != nil {
		return nil, err
	}
	conf := fmt.Sprintf(`daemon off;
master_process off;
worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log;
events { worker_connections 4096; }
http {
	access_log off;
	client_body_temp_path %[1]s;
	server {
		listen %[2]d backlog=4096;
		location / { return 200 "ok\n"; }
	}
}
`, dir, httpPort)
	if err := os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(conf), 0o644); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	s := &HTTPServer{dir: dir, cmd: Cmd(l.Server, "nginx", "-e", filepath.Join(dir, "error.log"), "-p", dir, "-c", filepath.Join(dir, "nginx.conf"))}
	if err := s.cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("nginx: %w", err)
	}
	ok := waitFor(5*time.Second, func() bool {
		out, _ := Cmd(l.Server, "ss", "-ltnH", fmt.Sprintf("sport = :%d", httpPort)).Output()
		return len(strings.TrimSpace(string(out))) > 0
	})
	if !ok {
		log, _ := os.ReadFile(filepath.Join(dir, "error.log"))
		s.Stop()
		return nil, fmt.Errorf("nginx did not listen: %s", log)
	}
	return s, nil
}

// Stop ends nginx and removes its files.
func (s *HTTPServer) Stop() {
	s.cmd.Process.Kill()
	s.cmd.Wait()
	os.RemoveAll(s.dir)
}

// cpsConnections is how many connections wrk keeps opening at once.
const cpsConnections = 16

var (
	wrkRate   = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
	wrkTotal  = regexp.MustCompile(`(\d+) requests in`)
	wrkErrors = regexp.MustCompile(`Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)`)
)

// DriveCPS runs wrk from the client against target:80 for seconds, every
// request on a new connection (Connection: close), and returns the
// completed requests per second; LossPercent is the share of socket errors.
func (l *Lab) DriveCPS(target netip.Addr, seconds int) (Result, error) {
	url := "http://" + netip.AddrPortFrom(target, httpPort).String() + "/"
	args := []string{"wrk", "-t1", "-c" + strconv.Itoa(cpsConnections), "-d" + strconv.Itoa(seconds) + "s",
		"-H", "Connection: close", url}
	out, r, err := measured(Cmd(l.Client, args...))
	if err != nil {
		return r, fmt.Errorf("wrk %s: %w: %s", url, err, out)
	}
	return r, parseWrk(string(out), &r)
}

// parseWrk reads wrk's summary into r.
func parseWrk(out string, r *Result) error {
	m := wrkRate.FindStringSubmatch(out)
	t := wrkTotal.FindStringSubmatch(out)
	if m == nil || t == nil {
		return fmt.Errorf("wrk: no request rate in %q", out)
	}
	r.CPS, _ = strconv.ParseFloat(m[1], 64)
	total, _ := strconv.ParseFloat(t[1], 64)
	var errs float64
	if e := wrkErrors.FindStringSubmatch(out); e != nil {
		for _, n := range e[1:] {
			v, _ := strconv.ParseFloat(n, 64)
			errs += v
		}
	}
	if total+errs > 0 {
		r.LossPercent = 100 * errs / (total + errs)
	}
	return nil
}
