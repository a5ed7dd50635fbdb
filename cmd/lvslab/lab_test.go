package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lvslab/lvslab/topo"
)

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// TestMain removes the binary the tests built.
func TestMain(m *testing.M) {
	code := m.Run()
	if binPath != "" {
		os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

// lvslab builds the binary once for the tests that run it as users do.
func lvslab(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to build labs (run as root, or in CI)")
	}
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "lvslab-bin")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "lvslab")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	require.NoError(t, binErr)
	return binPath
}

func run(t *testing.T, runDir string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(lvslab(t), args...)
	cmd.Env = append(os.Environ(), "LVSLAB_RUN_DIR="+runDir)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// owned is what a run folder's registries say exists: namespaces by inode
// and cookie (the kernel reuses inodes for other programs' namespaces).
func owned(t *testing.T, runDir string) map[uint64]uint64 {
	t.Helper()
	labs, err := topo.List(runDir)
	require.NoError(t, err)
	inos := map[uint64]uint64{}
	for _, l := range labs {
		for _, n := range l.Nodes {
			inos[n.Ino] = n.Cookie
		}
	}
	return inos
}

// assertNothingLeft: no lab folder, no mount under the run folder, no
// process inside any namespace the registries named.
func assertNothingLeft(t *testing.T, runDir string, inos map[uint64]uint64) {
	t.Helper()
	entries, _ := os.ReadDir(runDir)
	assert.Empty(t, entries, "run folder is empty")
	mounts, err := os.ReadFile("/proc/self/mountinfo")
	require.NoError(t, err)
	assert.NotContains(t, string(mounts), runDir, "no pinned namespace left")
	procs, _ := os.ReadDir("/proc")
	for _, p := range procs {
		f, err := os.Open(filepath.Join("/proc", p.Name(), "ns/net"))
		if err != nil {
			continue
		}
		var st syscall.Stat_t
		if syscall.Fstat(int(f.Fd()), &st) == nil {
			if cookie, ours := inos[st.Ino]; ours {
				if c, err := topo.NetNSCookie(f); err == nil && c == cookie {
					t.Errorf("process %s is still in a lab namespace", p.Name())
				}
			}
		}
		f.Close()
	}
}

// upLab brings up an example or scenario file with lvslab up in runDir and,
// when the test ends, takes lab (its name) down and checks nothing is left.
func upLab(t *testing.T, runDir, example, lab string) {
	t.Helper()
	out, err := run(t, runDir, "up", example)
	require.NoError(t, err, out)
	inos := owned(t, runDir)
	t.Cleanup(func() {
		out, err := run(t, runDir, "down", lab)
		require.NoError(t, err, out)
		assertNothingLeft(t, runDir, inos)
	})
}

func TestUpExecDown(t *testing.T) {
	runDir := t.TempDir()
	out, err := run(t, runDir, "up", "tun")
	require.NoError(t, err, out)
	assert.Contains(t, out, "(classic-tun) is up: 5 nodes")
	inos := owned(t, runDir)
	require.Len(t, inos, 5)

	out, err = run(t, runDir, "exec", "classic-tun", "client", "--", "ip", "-4", "-o", "addr", "show", "dev", "eth0")
	require.NoError(t, err, out)
	assert.Contains(t, out, "inet 192.168.1.254/24")
	out, err = run(t, runDir, "exec", "classic-tun", "rs1", "--", "ip", "-4", "-o", "addr", "show", "dev", "lo")
	require.NoError(t, err, out)
	assert.Contains(t, out, "inet 192.168.1.110/32", "a TUN real server holds the VIP")

	out, err = run(t, runDir, "exec", "classic-tun", "client", "--", "curl", "-sS", "-m", "5", "-D", "-", "-o", "/dev/null", "http://192.168.1.110/")
	require.NoError(t, err, out)
	assert.Contains(t, out, "200 OK", "a request through the tunnel is answered by a real server up started")

	_, err = run(t, runDir, "exec", "classic-tun", "client", "--", "sh", "-c", "exit 7")
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee)
	assert.Equal(t, 7, ee.ExitCode(), "exec passes the program's exit status through")

	out, err = run(t, runDir, "ls")
	require.NoError(t, err)
	assert.Contains(t, out, "classic-tun  up")
	assert.Contains(t, out, "rs3/ipipd:")
	assert.Contains(t, out, "rs3/realserver:")

	out, err = run(t, runDir, "down", "classic-tun")
	require.NoError(t, err, out)
	assertNothingLeft(t, runDir, inos)
}

func TestUpRejectsABrokenScenario(t *testing.T) {
	runDir := t.TempDir()
	file := filepath.Join(t.TempDir(), "broken.yaml")
	require.NoError(t, os.WriteFile(file, []byte(`name: broken
networks: [{name: internal, subnet: 10.1.1.0/24}]
nodes:
  - {name: rs4, role: realserver, interfaces: [{network: internal, address: 10.1.2.9}]}
`), 0o644))
	out, err := run(t, runDir, "up", file)
	require.Error(t, err)
	assert.Equal(t, file+`:4:77: node "rs4": address 10.1.2.9 is not in network internal (10.1.1.0/24)`+"\n", strings.TrimPrefix(out, "lvslab: "))
	entries, _ := os.ReadDir(runDir)
	assert.Empty(t, entries, "nothing is built")
}

// bigTUN is a TUN lab large enough that a kill lands mid-build: namespaces,
// pins and decapsulator agents in flight.
func bigTUN(n int) string {
	var b strings.Builder
	b.WriteString("name: killme\nnetworks: [{name: lan, subnet: 10.0.0.0/16}]\nnodes:\n")
	b.WriteString("  - {name: client, role: client, interfaces: [{network: lan, address: 10.0.0.254}]}\n")
	b.WriteString("  - {name: director, role: director, interfaces: [{network: lan, address: 10.0.0.1}]}\n")
	for i := range n {
		fmt.Fprintf(&b, "  - {name: rs%d, role: realserver, interfaces: [{network: lan, address: 10.0.1.%d}]}\n", i, i+1)
	}
	b.WriteString("services:\n  - vip: 10.0.0.100:80\n    realservers:\n")
	for i := range n {
		fmt.Fprintf(&b, "      - {node: rs%d, forward: tun}\n", i)
	}
	return b.String()
}

// TestSIGKILLThenDestroyAll kills `lvslab up` at points spread over its whole
// build (and after it), then proves `destroy --all` leaves nothing.
func TestSIGKILLThenDestroyAll(t *testing.T) {
	bin := lvslab(t)
	file := filepath.Join(t.TempDir(), "big.yaml")
	require.NoError(t, os.WriteFile(file, []byte(bigTUN(24)), 0o644))

	// One undisturbed run tells how long a build takes, to spread the kills.
	runDir := t.TempDir()
	start := time.Now()
	out, err := run(t, runDir, "up", file)
	require.NoError(t, err, out)
	full := time.Since(start)
	inos := owned(t, runDir)
	out, err = run(t, runDir, "destroy", "--all")
	require.NoError(t, err, out)
	assertNothingLeft(t, runDir, inos)

	const trials = 20
	for i := range trials {
		t.Run(fmt.Sprintf("kill at %d of %d", i+1, trials), func(t *testing.T) {
			runDir := t.TempDir()
			cmd := exec.Command(bin, "up", file)
			cmd.Env = append(os.Environ(), "LVSLAB_RUN_DIR="+runDir)
			require.NoError(t, cmd.Start())
			time.Sleep(full * time.Duration(i+1) / trials)
			cmd.Process.Signal(syscall.SIGKILL)
			cmd.Wait()
			if labs, _ := topo.List(runDir); len(labs) == 1 {
				t.Logf("killed with the lab %s: %d nodes, %d agents recorded", labs[0].State, len(labs[0].Nodes), len(labs[0].Agents))
			}
			inos := owned(t, runDir)
			out, err := run(t, runDir, "destroy", "--all")
			require.NoError(t, err, out)
			assertNothingLeft(t, runDir, inos)
		})
	}
}
