package scenarios

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lvslab/lvslab/reports"
	"github.com/lvslab/lvslab/topo"
	"github.com/lvslab/lvslab/topo/agent"
)

// TestMain lets the test binary serve as its own agent executable.
func TestMain(m *testing.M) {
	agent.MainIfAgent()
	os.Exit(m.Run())
}

// testScale shortens every example's timeline in tests.
const testScale = 0.15

func needLabs(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("builds labs; skipped with -short")
	}
	if os.Geteuid() != 0 {
		t.Skip("building labs needs root (network namespaces)")
	}
}

// requireNothingLeft proves the run removed its lab: no registry entry and
// no namespace with the lab's ID.
func requireNothingLeft(t *testing.T, runDir, lab string) {
	t.Helper()
	labs, err := topo.List(runDir)
	require.NoError(t, err)
	assert.Empty(t, labs)
	out, err := exec.Command("ip", "netns", "list").Output()
	require.NoError(t, err)
	if lab != "" {
		assert.NotContains(t, string(out), lab)
	}
}

// TestExamplesRunGreen runs every example that has a load, at a fraction
// of its length: each must pass its own expectations and leave nothing.
func TestExamplesRunGreen(t *testing.T) {
	needLabs(t)
	entries, err := Examples.ReadDir("examples")
	require.NoError(t, err)
	for _, e := range entries {
		name := strings.TrimSuffix(e.Name(), ".yaml")
		s, err := LoadExample(name)
		require.NoError(t, err)
		if len(s.Load) == 0 {
			continue
		}
		t.Run(name, func(t *testing.T) {
			runDir := t.TempDir()
			rep, err := s.Run(context.Background(), RunOptions{Scale: testScale, Seed: 1, RunDir: runDir})
			require.NoError(t, err)
			for _, x := range rep.Expectations {
				assert.True(t, x.Passed, "%s: measured %g %s", x.Text, x.Value, x.Detail)
			}
			assert.True(t, rep.Passed)
			require.NotNil(t, rep.Load)
			assert.NotZero(t, rep.Load.Requests)
			lab, err := s.BuildLab()
			require.NoError(t, err)
			assert.Len(t, rep.Services, len(lab.Services), "the structured services and the ipvsadm block's")
			assert.Len(t, rep.Faults, len(s.Faults))
			assert.NotEmpty(t, rep.Manifest["lab"])
			for _, f := range rep.Faults {
				if f.DetectedAfterS == nil {
					continue
				}
				// detection within interval × fall (plus a check's timeout
				// and a second for a loaded machine)
				for _, sv := range s.Services {
					if hc := sv.HealthCheck; hc != nil {
						iv, _ := time.ParseDuration(hc.Interval)
						to, _ := time.ParseDuration(hc.Timeout)
						bound := time.Duration(hc.Fall)*iv + to + time.Second
						assert.LessOrEqual(t, *f.DetectedAfterS, bound.Seconds(), "%s %s", f.Action, f.Target)
					}
				}
			}
			if len(s.Faults) == 0 && len(s.Services) == 1 && s.IPVSADM == "" && rep.Load.Errors == 0 {
				// The director's counters are read after the estimator
				// folded the end of the load: they equal what the client saw.
				var director, client uint64
				for _, rs := range rep.Services[0].Realservers {
					director += rs.Connections
				}
				for _, rs := range rep.Load.Realservers {
					client += rs.Connections
				}
				assert.Equal(t, client, director, "connections, client side vs director")
			}
			if name == "allports-sticky" {
				// The point of the example: each client on one real
				// server, over both ports it connected to.
				require.NotNil(t, rep.Load.Clients)
				assert.Len(t, rep.Load.Clients.PerClient, 4)
				for _, c := range rep.Load.Clients.PerClient {
					assert.Len(t, c.ByPort, 2, "%s connected to both ports", c.Address)
					assert.Len(t, c.Realservers, 1, "%s stayed on one real server", c.Address)
				}
			}
			requireNothingLeft(t, runDir, rep.Manifest["lab"])
		})
	}
}

// TestInterruptedRunLeavesNothing cancels a run in the middle of its load,
// as Ctrl-C does.
func TestInterruptedRunLeavesNothing(t *testing.T) {
	needLabs(t)
	s, err := LoadExample("quickstart")
	require.NoError(t, err)
	runDir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	var progress strings.Builder
	pr, pw, err := os.Pipe()
	require.NoError(t, err)
	go func() {
		// cancel once the timeline has started
		buf := make([]byte, 4096)
		for {
			n, err := pr.Read(buf)
			progress.Write(buf[:n])
			if strings.Contains(progress.String(), "timeline starts") {
				time.AfterFunc(500*time.Millisecond, cancel)
			}
			if err != nil {
				return
			}
		}
	}()
	_, err = s.Run(ctx, RunOptions{Scale: 1, RunDir: runDir, Progress: pw})
	pw.Close()
	require.ErrorIs(t, err, context.Canceled)
	requireNothingLeft(t, runDir, "")
}

// TestFaultsChangeWhatServes runs phases with quiet gaps between them and
// a fault in each gap, and checks each phase saw the table and servers the
// faults left: a killed server refuses until restored, a standby server
// serves only once added, a removed one no longer, an erroring one answers
// with its status.
func TestFaultsChangeWhatServes(t *testing.T) {
	needLabs(t)
	s, err := Parse("faults.yaml", []byte("name: faults\n"+labFront+`  - {name: rs1, role: realserver, interfaces: [{network: internal, address: 10.1.1.2}], server: {kind: tcp}}
  - {name: rs2, role: realserver, interfaces: [{network: internal, address: 10.1.1.3}], server: {kind: tcp}}
  - {name: rs3, role: realserver, interfaces: [{network: internal, address: 10.1.1.4}], server: {kind: tcp, port: 80}}
  - {name: rs4, role: realserver, interfaces: [{network: internal, address: 10.1.1.5}], server: {kind: tcp}}
services:
  - vip: 192.168.1.110:80
    scheduler: rr
    realservers:
      - {node: rs1, forward: nat}
      - {node: rs2, forward: nat}
      - {node: rs3, forward: nat}
      - {node: rs4, forward: nat, standby: true}
load:
  - {name: killed, kind: tcp, rate: 100/s, duration: 1500ms}
  - {name: added, kind: tcp, rate: 100/s, duration: 1500ms, at: 2500ms}
  - {name: removed, kind: tcp, rate: 100/s, duration: 1500ms, at: 5s}
faults:
  - {at: 0s, kill: rs2}
  - {at: 2s, restore: rs2}
  - {at: 2s, add: rs4}
  - {at: 4500ms, remove: rs1}
  - {at: 4500ms, error: rs3, status: 500, for: 3s}
expect:
  - errors > 0
`))
	require.NoError(t, err)
	runDir := t.TempDir()
	rep, err := s.Run(context.Background(), RunOptions{Scale: 1, RunDir: runDir})
	require.NoError(t, err)
	require.Len(t, rep.Phases, 3)
	conns := func(phase int, id string) uint64 {
		for _, sl := range rep.Phases[phase].Realservers {
			if sl.ID == id {
				return sl.Connections
			}
		}
		return 0
	}
	killed, added, removed := rep.Phases[0], rep.Phases[1], rep.Phases[2]
	assert.NotZero(t, killed.ErrorsByClass["refused"], "rs2 was killed: %v", killed.ErrorsByClass)
	assert.Zero(t, conns(0, "rs2"))
	assert.Zero(t, conns(0, "rs4"), "rs4 is standby")
	assert.Zero(t, added.Errors, "rs2 restored: %v", added.ErrorsByClass)
	assert.NotZero(t, conns(1, "rs2"))
	assert.NotZero(t, conns(1, "rs4"), "rs4 was added")
	assert.Zero(t, conns(2, "rs1"), "rs1 was removed")
	assert.Equal(t, map[string]float64{"rs1": 1, "rs2": 1, "rs3": 1}, weightsOf(killed))
	assert.Equal(t, map[string]float64{"rs1": 1, "rs2": 1, "rs3": 1, "rs4": 1}, weightsOf(added))
	assert.Equal(t, map[string]float64{"rs2": 1, "rs3": 1, "rs4": 1}, weightsOf(removed))
	assert.NotZero(t, removed.ErrorsByClass["status"], "rs3 answers 500: %v", removed.ErrorsByClass)
	require.Len(t, rep.Faults, 5)
	assert.Equal(t, reports.Fault{AtS: 4.5, Action: "error", Target: "rs3", ForS: 3, Detail: rep.Faults[4].Detail}, rep.Faults[4])
	assert.Contains(t, rep.Faults[4].Detail, "errors from 4s")
	assert.True(t, rep.Passed)
	requireNothingLeft(t, runDir, rep.Manifest["lab"])
}

func weightsOf(l reports.Load) map[string]float64 {
	w := map[string]float64{}
	for _, s := range l.Realservers {
		if s.Weight > 0 {
			w[s.ID] = s.Weight
		}
	}
	return w
}

// TestGoAPI is the README's example: a lab inside a go test, reached
// through its nodes and its director, then driven through its timeline.
func TestGoAPI(t *testing.T) {
	t.Setenv(DurationScaleEnv, "0.1")
	s, err := LoadExample("quickstart")
	require.NoError(t, err)
	lab := StartTest(t, s)

	out, err := lab.IPVSADM("-L", "-n")
	require.NoError(t, err)
	assert.Contains(t, out, "TCP  192.168.1.110:80 wlc\n  -> 10.1.1.2:80                  Masq    3")
	_, err = lab.IPVSADM("-e", "-t", "192.168.1.110:80", "-r", "10.9.9.9:80")
	assert.ErrorContains(t, err, "No such destination")
	addrs, err := lab.Exec("client", "ip", "-4", "-o", "addr", "show", "dev", "eth0")
	require.NoError(t, err)
	assert.Contains(t, string(addrs), "192.168.1.254/24")

	rep, err := lab.RunTimeline(context.Background())
	require.NoError(t, err)
	assert.True(t, rep.Passed)
}

// TestLinkFaults cuts a real server's link for one phase (its requests
// time out, nobody else's do) and checks every link fault applies and
// restores cleanly; then kills the director for a phase and restarts it.
// Phases that must see no errors give each request 2 s, and a phase ends
// (timeout included) before the next fault: a loaded 2-core machine
// stalls a process for most of a second.
func TestLinkFaults(t *testing.T) {
	needLabs(t)
	s, err := Parse("link.yaml", []byte("name: link\n"+natNodes+`services:
  - vip: 192.168.1.110:80
    scheduler: rr
    realservers: [{node: rs1, forward: nat}, {node: rs2, forward: nat}]
load:
  - {name: cut, rate: 50/s, duration: 1s, timeout: 500ms, at: 500ms}
  - {name: healed, rate: 50/s, duration: 1s, timeout: 2s, at: 3s}
  - {name: headless, rate: 50/s, duration: 500ms, timeout: 300ms, at: 6700ms}
  - {name: rebooted, rate: 50/s, duration: 500ms, timeout: 2s, at: 9s}
faults:
  - {at: 6500ms, kill: director, for: 2s}
  - {at: 0s, link: rs1, down: true, for: 2500ms}
  - {at: 0s, link: rs2, rate: 10mbit, for: 2500ms}
  - {at: 0s, link: client, loss: 1%, for: 300ms}
`))
	require.NoError(t, err)
	runDir := t.TempDir()
	rep, err := s.Run(context.Background(), RunOptions{Scale: 1, RunDir: runDir})
	require.NoError(t, err)
	require.Len(t, rep.Phases, 4)
	cut, healed, headless, rebooted := rep.Phases[0], rep.Phases[1], rep.Phases[2], rep.Phases[3]
	assert.Equal(t, headless.Requests, headless.Errors, "no director, no service: %v", headless.ErrorsByClass)
	assert.Zero(t, rebooted.Errors, "the restarted director loaded its table: %v", rebooted.ErrorsByClass)
	assert.NotZero(t, cut.ErrorsByClass["timeout"], "%v", cut.ErrorsByClass)
	for _, sl := range cut.Realservers {
		if sl.ID == "rs1" {
			assert.Zero(t, sl.Connections, "rs1's link was down")
		}
	}
	assert.Zero(t, healed.Errors, "%v", healed.ErrorsByClass)
	assert.Len(t, healed.Realservers, 2)
	requireNothingLeft(t, runDir, rep.Manifest["lab"])
}

// natNodes is the NAT lab with two real servers the runner tests share:
// each appends its services, load and faults (and may add nodes first).
const natNodes = labFront + `  - {name: rs1, role: realserver, interfaces: [{network: internal, address: 10.1.1.2}]}
  - {name: rs2, role: realserver, interfaces: [{network: internal, address: 10.1.1.3}]}
`

// TestHealthFlaps kills a checked real server twice and restores it twice:
// the checks take it out and put it back each time (two flaps), and each
// fault reports when that happened and when the load's errors stopped.
// The check's timeout (1 s, fall 2) is one a loaded machine meets, so
// only the kills flap a server (a killed one refuses at once); a restore
// leaves 2 s for the server to start and rise before the next kill.
func TestHealthFlaps(t *testing.T) {
	needLabs(t)
	s, err := Parse("flaps.yaml", []byte("name: flaps\n"+natNodes+`services:
  - vip: 192.168.1.110:80
    scheduler: rr
    realservers: [{node: rs1, forward: nat}, {node: rs2, forward: nat}]
    health_check: {kind: tcp, interval: 100ms, timeout: 1s, rise: 2, fall: 2}
load:
  - {rate: 100/s, duration: 7s, timeout: 2s}
faults:
  - {at: 500ms, kill: rs2, for: 1s}
  - {at: 3500ms, kill: rs2, for: 1s}
expect:
  - recovered(rs2) < 3s
  - detected(rs2) < 2s
`))
	require.NoError(t, err)
	runDir := t.TempDir()
	rep, err := s.Run(context.Background(), RunOptions{Scale: 1, RunDir: runDir})
	require.NoError(t, err)
	assert.Equal(t, []reports.Health{
		{Node: "rs1", Service: "-t 192.168.1.110:80", Up: true},
		{Node: "rs2", Service: "-t 192.168.1.110:80", Downs: 2, Flaps: 2, Up: true},
	}, rep.Health)
	require.Len(t, rep.Faults, 2)
	for _, f := range rep.Faults {
		assert.NotNil(t, f.DetectedAfterS, "%s at %gs: %s", f.Action, f.AtS, f.Detail)
		assert.NotNil(t, f.ReaddedAfterS, "%s at %gs: %s", f.Action, f.AtS, f.Detail)
		assert.NotNil(t, f.RecoveredAfterS, "%s at %gs: %s", f.Action, f.AtS, f.Detail)
	}
	for _, x := range rep.Expectations {
		assert.True(t, x.Passed, "%s: measured %g %s", x.Text, x.Value, x.Detail)
	}
	requireNothingLeft(t, runDir, rep.Manifest["lab"])
}

// TestSorryServer kills both checked real servers: the sorry server takes
// every request while both are down and leaves when one is back. Each
// phase starts 1.5 s or more after the change it observes (the checks must
// notice it; a restored server must start and rise), checks time out
// after 1 s and requests after 1 s, all of which a loaded machine meets.
func TestSorryServer(t *testing.T) {
	needLabs(t)
	s, err := Parse("sorry.yaml", []byte("name: sorry\n"+natNodes+`  - {name: sorry, role: realserver, interfaces: [{network: internal, address: 10.1.1.9}]}
services:
  - vip: 192.168.1.110:80
    scheduler: rr
    realservers: [{node: rs1, forward: nat}, {node: rs2, forward: nat}]
    health_check: {kind: tcp, interval: 100ms, timeout: 1s, rise: 2, fall: 2, sorry_server: sorry}
load:
  - {name: before, rate: 50/s, duration: 500ms, timeout: 1s}
  - {name: all down, rate: 50/s, duration: 1s, timeout: 1s, at: 3s}
  - {name: one back, rate: 50/s, duration: 1s, timeout: 1s, at: 7s}
faults:
  - {at: 1500ms, kill: rs1, for: 3500ms}
  - {at: 1500ms, kill: rs2}
`))
	require.NoError(t, err)
	runDir := t.TempDir()
	rep, err := s.Run(context.Background(), RunOptions{Scale: 1, RunDir: runDir})
	require.NoError(t, err)
	require.Len(t, rep.Phases, 3)
	before, down, back := rep.Phases[0], rep.Phases[1], rep.Phases[2]
	conns := func(l reports.Load, id string) uint64 {
		for _, sl := range l.Realservers {
			if sl.ID == id {
				return sl.Connections
			}
		}
		return 0
	}
	assert.Zero(t, conns(before, "sorry"), "a sorry server stands by while a real server is up")
	assert.Zero(t, down.Errors, "%v", down.ErrorsByClass)
	assert.Equal(t, down.Requests, conns(down, "sorry"), "every request goes to the sorry server")
	assert.Zero(t, back.Errors, "%v", back.ErrorsByClass)
	assert.Zero(t, conns(back, "sorry"), "out again once rs1 is back")
	assert.Equal(t, back.Requests, conns(back, "rs1"))
	// The weight shares follow the table at each phase's start: the sorry
	// server counts only while it is in, a quiescent server weighs 0.
	assert.Equal(t, map[string]float64{"rs1": 1, "rs2": 1}, weightsOf(before))
	assert.Equal(t, map[string]float64{"sorry": 1}, weightsOf(down))
	assert.Equal(t, map[string]float64{"rs1": 1}, weightsOf(back))
	assert.Equal(t, []reports.Health{
		{Node: "rs1", Service: "-t 192.168.1.110:80", Downs: 1, Flaps: 1, Up: true},
		{Node: "rs2", Service: "-t 192.168.1.110:80", Downs: 1, Up: false},
		{Node: "sorry", Service: "-t 192.168.1.110:80", Sorry: true, Ins: 1, Up: false},
	}, rep.Health)
	requireNothingLeft(t, runDir, rep.Manifest["lab"])
}

// TestBlockOnlyDR runs a DR service that only the ipvsadm block declares:
// its real servers answer because they got the DR setup (VIP on lo), and
// the report lists the service with its real servers, weights and shares.
// Requests get 2 s: a loaded 2-core machine stalls a process for most of a
// second, and the test is about where requests go, not how fast.
func TestBlockOnlyDR(t *testing.T) {
	needLabs(t)
	s, err := Parse("blockdr.yaml", []byte(`name: blockdr
networks: [{name: lan, subnet: 192.168.1.0/24}]
nodes:
  - {name: client, role: client, interfaces: [{network: lan, address: 192.168.1.254}]}
  - {name: director, role: director, interfaces: [{network: lan, address: 192.168.1.1}]}
  - {name: rs1, role: realserver, interfaces: [{network: lan, address: 192.168.1.2}], server: {port: 80}}
  - {name: rs2, role: realserver, interfaces: [{network: lan, address: 192.168.1.3}], server: {port: 80}}
ipvsadm: |
  -A -t 192.168.1.110:80 -s rr
  -a -t 192.168.1.110:80 -r 192.168.1.2:80 -g -w 1
  -a -t 192.168.1.110:80 -r 192.168.1.3:80 -g -w 3
load:
  - {name: steady, target: 192.168.1.110:80, rate: 50/s, duration: 1s, timeout: 2s}
`))
	require.NoError(t, err)
	runDir := t.TempDir()
	rep, err := s.Run(context.Background(), RunOptions{Scale: 1, RunDir: runDir})
	require.NoError(t, err)
	require.NotNil(t, rep.Load)
	p := rep.Load
	assert.NotZero(t, p.Requests)
	assert.Zero(t, p.Errors, "%v", p.ErrorsByClass)
	assert.Len(t, p.Realservers, 2)
	require.Len(t, rep.Services, 1)
	svc := rep.Services[0]
	assert.Equal(t, []string{"192.168.1.110:80", "tcp", "rr"}, []string{svc.VIP, svc.Protocol, svc.Scheduler})
	require.Len(t, svc.Realservers, 2)
	var conns uint64
	for i, want := range []struct {
		node, addr string
		weight     int
		share      float64
	}{{"rs1", "192.168.1.2:80", 1, 0.25}, {"rs2", "192.168.1.3:80", 3, 0.75}} {
		rs := svc.Realservers[i]
		assert.Equal(t, want.node, rs.Node)
		assert.Equal(t, want.addr, rs.Address)
		assert.Equal(t, "dr", rs.Forward)
		assert.Equal(t, want.weight, rs.Weight)
		assert.Equal(t, want.share, rs.WeightShare)
		conns += rs.Connections
	}
	assert.Equal(t, p.Requests, conns, "the director counted every connection the client made")
	assert.NotZero(t, svc.Fairness.Jain)
	requireNothingLeft(t, runDir, rep.Manifest["lab"])
}

// TestServerOnSeveralPorts runs an all-ports persistent service whose real
// servers listen on two ports: a phase to each port is served without
// errors, by the one real server the client sticks to, and a default
// server listens on every port its services send to. Requests get 2 s, as
// in TestBlockOnlyDR.
func TestServerOnSeveralPorts(t *testing.T) {
	needLabs(t)
	s, err := Parse("ports.yaml", []byte("name: ports\n"+labFront+`  - {name: rs1, role: realserver, interfaces: [{network: internal, address: 10.1.1.2}], server: {ports: [80, 443]}}
  - {name: rs2, role: realserver, interfaces: [{network: internal, address: 10.1.1.3}], server: {ports: [80, 443]}}
  - {name: rs3, role: realserver, interfaces: [{network: internal, address: 10.1.1.4}]}
services:
  - vip: 192.168.1.110:0
    scheduler: rr
    persistence: {timeout: 60s}
    realservers: [{node: rs1, forward: nat}, {node: rs2, forward: nat}]
  - vip: 192.168.1.111:80
    realservers: [{node: rs3, forward: nat}]
  - vip: 192.168.1.111:8080
    realservers: [{node: rs3, forward: nat}]
load:
  - {name: http, target: 192.168.1.110:80, rate: 50/s, duration: 500ms, timeout: 2s}
  - {name: https, target: 192.168.1.110:443, rate: 50/s, duration: 500ms, timeout: 2s}
  - {name: rs3 8080, target: 192.168.1.111:8080, rate: 50/s, duration: 500ms, timeout: 2s}
`))
	require.NoError(t, err)
	runDir := t.TempDir()
	rep, err := s.Run(context.Background(), RunOptions{Scale: 1, RunDir: runDir})
	require.NoError(t, err)
	require.Len(t, rep.Phases, 3)
	for _, p := range rep.Phases {
		assert.NotZero(t, p.Requests, p.Name)
		assert.Zero(t, p.Errors, "%s: %v", p.Name, p.ErrorsByClass)
	}
	serving := func(l reports.Load) []string {
		var ids []string
		for _, sl := range l.Realservers {
			if sl.Connections > 0 {
				ids = append(ids, sl.ID)
			}
		}
		return ids
	}
	require.Len(t, serving(rep.Phases[0]), 1)
	assert.Equal(t, serving(rep.Phases[0]), serving(rep.Phases[1]), "one template per client address, whatever the port")
	assert.Equal(t, []string{"rs3"}, serving(rep.Phases[2]))
	requireNothingLeft(t, runDir, rep.Manifest["lab"])
}

// TestHealthCheckDigest checks the body's MD5 (keepalived's HTTP_GET
// digest): rs2 answers 200 with another body, fails the check and is set
// quiescent, so the load reaches rs1 only. An HTTP check needs the real
// server scheduled too: 1 s and fall 2 are what a loaded machine meets.
func TestHealthCheckDigest(t *testing.T) {
	needLabs(t)
	s, err := Parse("digest.yaml", []byte("name: digest\n"+labFront+`  - {name: rs1, role: realserver, interfaces: [{network: internal, address: 10.1.1.2}], server: {response_bytes: 100}}
  - {name: rs2, role: realserver, interfaces: [{network: internal, address: 10.1.1.3}], server: {response_bytes: 200}}
services:
  - vip: 192.168.1.110:80
    scheduler: rr
    realservers: [{node: rs1, forward: nat}, {node: rs2, forward: nat}]
    # md5 of the built-in server's 100-byte body ("x" × 100), any case
    health_check: {kind: http, path: /, status: 200, digest: AED563ECAFB4BCC5654C597A421547B2, interval: 100ms, timeout: 1s, fall: 2}
load:
  - {name: checked, rate: 50/s, duration: 1s, timeout: 1s, at: 2s}
`))
	require.NoError(t, err)
	runDir := t.TempDir()
	rep, err := s.Run(context.Background(), RunOptions{Scale: 1, RunDir: runDir})
	require.NoError(t, err)
	require.NotNil(t, rep.Load)
	assert.Zero(t, rep.Load.Errors, "%v", rep.Load.ErrorsByClass)
	for _, sl := range rep.Load.Realservers {
		if sl.ID == "rs2" {
			assert.Zero(t, sl.Connections, "rs2 is quiescent")
		}
	}
	assert.Equal(t, []reports.Health{
		{Node: "rs1", Service: "-t 192.168.1.110:80", Up: true},
		{Node: "rs2", Service: "-t 192.168.1.110:80", Downs: 1, Up: false},
	}, rep.Health)
	assert.Equal(t, map[string]float64{"rs1": 1}, weightsOf(*rep.Load), "quiescent before the phase: weight 0")
	requireNothingLeft(t, runDir, rep.Manifest["lab"])
}
