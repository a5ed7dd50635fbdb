package scenarios

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/lvslab/lvslab/dataplane/engine"
	"github.com/lvslab/lvslab/topo"
	"github.com/lvslab/lvslab/topo/agent"
)

// HealthAgent checks real servers from the director's namespace, as
// keepalived's checkers do, and edits the director's table through its
// ipvsadm socket.
const HealthAgent = "healthcheck"

func init() { agent.Register(HealthAgent, runHealth) }

// Health check defaults (keepalived's: connect_timeout 5 s, delay_loop 60 s
// are too slow for a lab; these are a lab's).
const (
	DefaultCheckInterval = time.Second
	DefaultCheckTimeout  = 500 * time.Millisecond
	DefaultRise          = 1
	DefaultFall          = 1
)

// checkSpec is one real server of one service under a health check.
type checkSpec struct {
	Dest      Destination
	Addr      string // host:port to check
	Kind      string // tcp | http | command
	Path      string
	Status    int
	Digest    string // lower-case hex MD5 of the body; empty: any body
	Command   string
	Interval  time.Duration
	Timeout   time.Duration
	Rise      int
	Fall      int
	Quiescent bool // down: weight 0 instead of removal
	// Sorry is the service's sorry server, if it has one.
	Sorry *Destination
}

// HealthEvent is a real server going down or coming back up.
type HealthEvent struct {
	Node    string    `json:"node"`
	Service string    `json:"service"`
	Up      bool      `json:"up"`
	At      time.Time `json:"at"`
	Detail  string    `json:"detail,omitempty"` // why the last check failed
	// Sorry marks the service's sorry server going in (Up) or out.
	Sorry bool `json:"sorry,omitempty"`
}

// healthState counts consecutive results: a server that is up goes down
// after fall failures in a row, one that is down comes up after rise
// successes in a row (keepalived's retry and rise/fall).
type healthState struct {
	up          bool
	rise, fall  int
	okRun, fail int
}

func newHealthState(rise, fall int) *healthState {
	return &healthState{up: true, rise: max(rise, 1), fall: max(fall, 1)}
}

// observe adds one check result and reports whether the state changed.
func (h *healthState) observe(ok bool) bool {
	if ok {
		h.okRun, h.fail = h.okRun+1, 0
		if !h.up && h.okRun >= h.rise {
			h.up = true
			return true
		}
		return false
	}
	h.fail, h.okRun = h.fail+1, 0
	if h.up && h.fail >= h.fall {
		h.up = false
		return true
	}
	return false
}

// healthSpecs are the checks of every service that has a health_check.
func (s *Scenario) healthSpecs(dests map[string][]Destination) []checkSpec {
	var out []checkSpec
	for i, sv := range s.Services {
		hc := sv.HealthCheck
		if hc == nil {
			continue
		}
		var sorry *Destination
		for _, rs := range sv.RealServers {
			for _, d := range dests[rs.Node] {
				if rs.sorry && d.Service == s.serviceArgs(i) {
					sorry = &d
				}
			}
		}
		for _, rs := range sv.RealServers {
			if rs.sorry {
				continue
			}
			for _, d := range dests[rs.Node] {
				if d.Service != s.serviceArgs(i) {
					continue
				}
				c := checkSpec{Dest: d, Sorry: sorry, Addr: checkAddr(d.Server, hc.Port), Kind: hc.Kind, Path: hc.Path, Status: hc.Status, Digest: strings.ToLower(hc.Digest), Command: hc.Command,
					Rise: max(hc.Rise, DefaultRise), Fall: max(hc.Fall, DefaultFall), Quiescent: hc.Quiescent == nil || *hc.Quiescent}
				c.Interval, _ = duration(hc.Interval, DefaultCheckInterval)
				c.Timeout, _ = duration(hc.Timeout, DefaultCheckTimeout)
				if c.Path == "" {
					c.Path = "/"
				}
				if c.Status == 0 {
					c.Status = http.StatusOK
				}
				out = append(out, c)
			}
		}
	}
	return out
}

// checkAddr is the address a check connects to: the real server's, with
// port when given (an all-ports service's real servers have none).
func checkAddr(server string, port int) string {
	host, p, err := net.SplitHostPort(server)
	if err != nil {
		host, p = server, "80"
	}
	if port != 0 {
		p = fmt.Sprint(port)
	}
	return net.JoinHostPort(host, p)
}

// serviceArgs is service i's key as ipvsadm arguments ("-t VIP:port").
func (s *Scenario) serviceArgs(i int) string {
	return serviceKeyArgs(s.lab.lab.Services[i])
}

// runHealth is `lvslab agent … healthcheck --director SOCKET --checks JSON`.
// Its control socket answers every request with the events so far.
func runHealth(ctx context.Context, env *agent.Env, args []string) error {
	fs := flag.NewFlagSet(HealthAgent, flag.ContinueOnError)
	director := fs.String("director", "", "the director's ipvsadm socket")
	checks := fs.String("checks", "", "the checks, as JSON")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var specs []checkSpec
	if err := json.Unmarshal([]byte(*checks), &specs); err != nil {
		return fmt.Errorf("--checks: %w", err)
	}
	var mu sync.Mutex
	var events []HealthEvent
	ipvsadm := func(args []string) string {
		var out, errb bytes.Buffer
		if code, err := engine.Ipvsadm(*director, args, nil, &out, &errb); err != nil || code != 0 {
			return fmt.Sprintf("ipvsadm %s: %v %s", strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
		}
		return ""
	}
	// down counts each service's real servers that are down, against
	// how many it has, for its sorry server.
	down, total := map[string]int{}, map[string]int{}
	for _, c := range specs {
		total[c.Dest.Service]++
	}
	for _, c := range specs {
		go checkLoop(ctx, c, func(up bool, why string) {
			d := c.Dest
			var args []string
			switch {
			case up && c.Quiescent:
				args = d.SetWeight(d.Weight)
			case up:
				args = d.Add()
			case c.Quiescent:
				args = d.SetWeight(0)
			default:
				args = d.Delete()
			}
			mu.Lock()
			defer mu.Unlock()
			// The sorry server goes first when the last real server
			// goes down and last when the first comes back, so the
			// service never has nobody to send a client to.
			sorry := c.Sorry
			wasDown := down[d.Service] == total[d.Service]
			if up {
				down[d.Service]--
			} else {
				down[d.Service]++
			}
			allDown := down[d.Service] == total[d.Service]
			var sorryIn, sorryOut bool
			if sorry != nil {
				sorryIn, sorryOut = allDown && !wasDown, wasDown && !allDown
			}
			var sorryWhy string
			if sorryIn {
				in := *sorry
				in.Weight = sorryWeight
				sorryWhy = ipvsadm(in.Add())
			}
			if failed := ipvsadm(args); failed != "" {
				why = strings.TrimPrefix(why+"; "+failed, "; ")
			}
			if sorryOut {
				sorryWhy = ipvsadm(sorry.Delete())
			}
			now := time.Now()
			events = append(events, HealthEvent{Node: d.Node, Service: d.Service, Up: up, At: now, Detail: why})
			if sorryIn || sorryOut {
				events = append(events, HealthEvent{Node: sorry.Node, Service: d.Service, Up: sorryIn, At: now, Detail: sorryWhy, Sorry: true})
			}
		})
	}
	return serveControl(ctx, env, func(c net.Conn) agentReply {
		var req struct{}
		if err := json.NewDecoder(c).Decode(&req); err != nil {
			return agentReply{Error: err.Error()}
		}
		mu.Lock()
		defer mu.Unlock()
		b, _ := json.Marshal(events)
		return agentReply{Events: b}
	})
}

// checkLoop checks one real server every interval until ctx ends and
// calls change on every transition.
func checkLoop(ctx context.Context, c checkSpec, change func(up bool, why string)) {
	h := newHealthState(c.Rise, c.Fall)
	tick := time.NewTicker(c.Interval)
	defer tick.Stop()
	for {
		err := check(ctx, c)
		if h.observe(err == nil) {
			why := ""
			if err != nil {
				why = err.Error()
			}
			change(h.up, why)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// check runs one check of c's kind against its real server.
func check(ctx context.Context, c checkSpec) error {
	ctx, cancel := context.WithTimeout(ctx, c.Timeout)
	defer cancel()
	switch c.Kind {
	case "http":
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+c.Addr+c.Path, nil)
		if err != nil {
			return err
		}
		tr := &http.Transport{DisableKeepAlives: true}
		defer tr.CloseIdleConnections()
		resp, err := (&http.Client{Transport: tr}).Do(req)
		if err != nil {
			return err
		}
		h := md5.New()
		_, err = io.Copy(h, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.Status {
			return fmt.Errorf("status %d, want %d", resp.StatusCode, c.Status)
		}
		if err != nil {
			return fmt.Errorf("reading the body: %w", err)
		}
		if sum := hex.EncodeToString(h.Sum(nil)); c.Digest != "" && sum != c.Digest {
			return fmt.Errorf("body digest %s, want %s", sum, c.Digest)
		}
		return nil
	case "command":
		out, err := exec.CommandContext(ctx, "/bin/sh", "-c", c.Command).CombinedOutput()
		if err != nil {
			return fmt.Errorf("%v: %s", err, strings.TrimSpace(string(out)))
		}
		return nil
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", c.Addr)
	if err != nil {
		return err
	}
	return conn.Close()
}

// sorryWeight is the weight a sorry server serves with (keepalived puts
// it in with weight 1).
const sorryWeight = 1

// sorryProblem says what keeps a service's sorry server from being one
// ("" when nothing does).
func (s *Scenario) sorryProblem(sv Service) string {
	name := sv.HealthCheck.SorryServer
	for _, rs := range sv.RealServers {
		if rs.Node == name && !rs.sorry {
			return "is one of the service's real servers"
		}
	}
	if len(sv.RealServers) == 0 {
		return "stands in for real servers the service does not have"
	}
	for _, n := range s.Nodes {
		if n.Name == name {
			if n.Role != string(topo.RealServer) {
				return fmt.Sprintf("is a %s, not a realserver", n.Role)
			}
			return ""
		}
	}
	return "is not a node"
}

// addSorryServers wires each service's sorry server into the lab as a
// standby real server of the service, forwarded like its first real
// server (keepalived forwards to it with the virtual server's lb_kind),
// so the topology routes it and the runner starts its server; the health
// checker adds it to the table only when every real server is down.
func (s *Scenario) addSorryServers() {
	for i := range s.Services {
		sv := &s.Services[i]
		if hc := sv.HealthCheck; hc == nil || hc.SorryServer == "" || s.sorryProblem(*sv) != "" {
			continue
		}
		sv.RealServers = append(sv.RealServers, RealServer{Node: sv.HealthCheck.SorryServer,
			Port: sv.RealServers[0].Port, Forward: sv.RealServers[0].Forward, Standby: true, sorry: true})
	}
}
