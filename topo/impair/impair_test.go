package impair_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/lvslab/lvslab/topo"
	"github.com/lvslab/lvslab/topo/agent"
	"github.com/lvslab/lvslab/topo/impair"
)

// The test binary serves as its own agent executable (the relay).
func TestMain(m *testing.M) {
	agent.MainIfAgent()
	if dir := os.Getenv("LVSLAB_TEST_HOLD"); dir != "" {
		holdDelayedLab(dir)
	}
	os.Exit(m.Run())
}

// holdDelayedLab is a runner that builds a pinned lab whose agents outlive
// it (as lvslab up does), delays a link, says so and waits to be killed.
func holdDelayedLab(runDir string) {
	f := topo.Probe()
	f.Netem = false
	in, err := topo.Build(context.Background(), twoNodeLab(), topo.Options{RunDir: runDir, Pin: true, Detached: true, Features: &f})
	if err == nil {
		_, err = impair.Start(in, "a", impair.Config{Delay: time.Second})
	}
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	fmt.Println("up")
	select {}
}

// TestKilledRunnerLeavesNothingAfterDestroyAll: a runner is SIGKILLed with
// a delay line spliced in; its relay lives on in the pinned fabric, and
// destroy --all removes it, the pair and the rest of the lab.
func TestKilledRunnerLeavesNothingAfterDestroyAll(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to build network namespaces (run as root, or in CI)")
	}
	runDir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "LVSLAB_TEST_HOLD="+runDir)
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	line, err := bufio.NewReader(out).ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, "up\n", line)
	require.NoError(t, cmd.Process.Kill())
	cmd.Wait()

	labs, err := topo.List(runDir)
	require.NoError(t, err)
	require.Len(t, labs, 1)
	var relays []int
	for _, a := range labs[0].Agents {
		if a.Kind == impair.AgentKind && a.Alive {
			relays = append(relays, a.PID)
		}
	}
	require.Len(t, relays, 1, "the relay outlives its runner")
	_, err = topo.DestroyAll(runDir)
	require.NoError(t, err)
	labs, err = topo.List(runDir)
	require.NoError(t, err)
	assert.Empty(t, labs)
	entries, _ := os.ReadDir(runDir)
	assert.Empty(t, entries)
	mounts, err := os.ReadFile("/proc/self/mountinfo")
	require.NoError(t, err)
	assert.NotContains(t, string(mounts), runDir, "no pinned namespace left")
	assert.False(t, running(relays[0]), "the relay is gone")
}

func TestDelayMechanismFollowsTheKernel(t *testing.T) {
	assert.Equal(t, impair.Netem, topo.Features{Netem: true}.DelayMechanism())
	assert.Equal(t, impair.Userspace, topo.Features{}.DelayMechanism())
}

func TestNetemQdiscCarriesDelayJitterAndLimit(t *testing.T) {
	cfg := impair.Config{Delay: 20 * time.Millisecond, Jitter: 5 * time.Millisecond}
	q := impair.NetemQdisc(7, cfg)
	want := netlink.NewNetem(netlink.QdiscAttrs{LinkIndex: 7, Parent: netlink.HANDLE_ROOT, Handle: netlink.MakeHandle(1, 0)},
		netlink.NetemQdiscAttrs{Latency: 20000, Jitter: 5000, Limit: 1000})
	assert.Equal(t, want, q)
	assert.Equal(t, uint32(impair.DefaultLimit), q.Limit, "netem's default limit")
	assert.Zero(t, q.ReorderProb)
	q = impair.NetemQdisc(7, impair.Config{Delay: time.Second, Limit: 50})
	assert.Equal(t, uint32(50), q.Limit)
	assert.Zero(t, q.Jitter)
}

var (
	addrA = netip.MustParseAddr("10.9.0.1")
	addrB = netip.MustParseAddr("10.9.0.2")
)

func twoNodeLab() *topo.Lab {
	iface := func(a netip.Addr) []topo.Interface {
		return []topo.Interface{{Network: "lan", Addresses: []netip.Prefix{netip.PrefixFrom(a, 24)}}}
	}
	return &topo.Lab{
		Name:     "impair",
		Networks: []topo.Network{{Name: "lan", Subnet: netip.MustParsePrefix("10.9.0.0/24")}},
		Nodes: []topo.Node{
			{Name: "a", Role: topo.Client, Interfaces: iface(addrA)},
			{Name: "b", Role: topo.RealServer, Interfaces: iface(addrB)},
		},
	}
}

// TestDelayLineDelaysAndCarriesBulkTCP builds two nodes on one network and
// delays a's link: a TCP connect takes at least two delays (SYN out,
// SYN-ACK back; a bound luck cannot meet), megabytes cross both ways
// intact as 64 KB GSO frames, and the restore leaves the fabric as built.
func TestDelayLineDelaysAndCarriesBulkTCP(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to build network namespaces (run as root, or in CI)")
	}
	mechs := []bool{false}
	if topo.Probe().Netem {
		mechs = append(mechs, true)
	}
	for _, withNetem := range mechs {
		f := topo.Probe()
		f.Netem = withNetem
		t.Run(f.DelayMechanism(), func(t *testing.T) { testDelay(t, f) })
	}
}

func testDelay(t *testing.T, f topo.Features) {
	runDir := t.TempDir()
	in, err := topo.Build(context.Background(), twoNodeLab(), topo.Options{RunDir: runDir, Features: &f})
	require.NoError(t, err)
	t.Cleanup(func() {
		// A delay still on: as after a crash, the lab's own teardown
		// removes the pair (its veth wait would time out otherwise) and
		// the relay.
		require.NoError(t, in.Destroy())
		labs, err := topo.List(runDir)
		require.NoError(t, err)
		assert.Empty(t, labs, "no lab left")
		assertRelaysGone(t, in)
	})
	serve(t, in)
	before := fabricLinks(t, in)

	const delay, jitter = 20 * time.Millisecond, 5 * time.Millisecond
	floor := 2 * (delay - jitter)
	fastest := func(n int) time.Duration {
		best := time.Hour
		for range n {
			best = min(best, connectTime(t, in))
		}
		return best
	}
	require.Less(t, fastest(5), floor, "without the fault, a connect is quicker than two delays")

	im, err := impair.Start(in, "a", impair.Config{Delay: delay, Jitter: jitter, Seed: 42})
	require.NoError(t, err)
	assert.Equal(t, f.DelayMechanism(), im.Mechanism())
	for range 3 {
		d := connectTime(t, in)
		t.Logf("connect through the delay: %v", d)
		assert.GreaterOrEqual(t, d, floor, "a connect crosses the delayed link twice")
	}
	bulk(t, in, 4<<20)
	stats, err := im.Stop()
	require.NoError(t, err)
	t.Logf("relay: %+v", stats)

	if f.DelayMechanism() == impair.Userspace {
		assert.Greater(t, stats.FromNode.MaxFrame, 1514, "a's GSO frames crossed whole")
		assert.Greater(t, stats.ToNode.MaxFrame, 1514, "b's GSO frames crossed whole")
		assert.Greater(t, stats.ToNode.Bytes, uint64(8<<20))
		assert.Zero(t, stats.Socket.Truncated)
		assert.Zero(t, stats.Socket.SendErrs)
		assert.Positive(t, stats.CPUSeconds, "the relay's CPU time is known once it stopped")
	}
	assert.Equal(t, before, fabricLinks(t, in), "the restore leaves the fabric as built")
	assertRelaysGone(t, in)
	assert.Less(t, fastest(5), floor, "after the restore, a connect is quick again")
	bulk(t, in, 1<<20)

	// Reordering as netem does: TCP still delivers every byte in order.
	im, err = impair.Start(in, "a", impair.Config{Delay: delay, Jitter: jitter, Reorder: true, Seed: 43})
	require.NoError(t, err)
	assert.GreaterOrEqual(t, connectTime(t, in), floor)
	bulk(t, in, 2<<20)
	_, err = im.Stop()
	require.NoError(t, err)

	// Left on for the teardown to remove.
	_, err = impair.Start(in, "b", impair.Config{Delay: delay})
	require.NoError(t, err)
}

func assertRelaysGone(t *testing.T, in *topo.Instance) {
	t.Helper()
	for _, a := range in.Agents() {
		if a.Kind == impair.AgentKind {
			select {
			case <-a.Done():
			default:
				t.Errorf("relay %d still runs", a.PID)
			}
		}
	}
}

// serve runs two TCP servers in b: port 5001 accepts and closes; port
// 5002 reads an upload to its end, answers with its SHA-256, then sends
// the number of bytes the upload's first 8 bytes asked for.
func serve(t *testing.T, in *topo.Instance) {
	var ls [2]net.Listener
	require.NoError(t, in.Do("b", func() (err error) {
		if ls[0], err = net.Listen("tcp4", "10.9.0.2:5001"); err != nil {
			return err
		}
		ls[1], err = net.Listen("tcp4", "10.9.0.2:5002")
		return err
	}))
	t.Cleanup(func() { ls[0].Close(); ls[1].Close() })
	go func() {
		for {
			c, err := ls[0].Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	go func() {
		for {
			c, err := ls[1].Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				h := sha256.New()
				if _, err := io.Copy(h, c); err != nil {
					return
				}
				c.Write(h.Sum(nil))
				io.Copy(c, payload(8<<20))
			}()
		}
	}()
}

// payload is n deterministic, incompressible bytes.
func payload(n int64) io.Reader {
	return io.LimitReader(rand.NewChaCha8([32]byte{1}), n)
}

func connectTime(t *testing.T, in *topo.Instance) time.Duration {
	t.Helper()
	var d time.Duration
	require.NoError(t, in.Do("a", func() error {
		start := time.Now()
		c, err := net.DialTimeout("tcp4", "10.9.0.2:5001", 10*time.Second)
		d = time.Since(start)
		if err == nil {
			c.Close()
		}
		return err
	}))
	return d
}

// bulk uploads up bytes from a to b and downloads 8 MB back, checking
// both.
func bulk(t *testing.T, in *topo.Instance, up int64) {
	t.Helper()
	var c *net.TCPConn
	require.NoError(t, in.Do("a", func() error {
		conn, err := net.DialTimeout("tcp4", "10.9.0.2:5002", 10*time.Second)
		if err == nil {
			c = conn.(*net.TCPConn)
		}
		return err
	}))
	defer c.Close()
	require.NoError(t, c.SetDeadline(time.Now().Add(60*time.Second)))
	h := sha256.New()
	_, err := io.Copy(c, io.TeeReader(payload(up), h))
	require.NoError(t, err)
	require.NoError(t, c.CloseWrite())
	sum := make([]byte, sha256.Size)
	_, err = io.ReadFull(c, sum)
	require.NoError(t, err)
	assert.Equal(t, h.Sum(nil), sum, "the upload arrived intact")
	got := sha256.New()
	n, err := io.Copy(got, c)
	require.NoError(t, err)
	want := sha256.New()
	io.Copy(want, payload(8<<20))
	require.Equal(t, int64(8<<20), n)
	assert.True(t, bytes.Equal(want.Sum(nil), got.Sum(nil)), "the download arrived intact")
}

// fabricLinks describes the fabric's links and their bridges.
func fabricLinks(t *testing.T, in *topo.Instance) string {
	t.Helper()
	fab, err := in.NetNS(topo.FabricNode)
	require.NoError(t, err)
	h, err := netlink.NewHandleAt(netns.NsHandle(fab.Fd()), unix.NETLINK_ROUTE)
	require.NoError(t, err)
	defer h.Close()
	links, err := h.LinkList()
	require.NoError(t, err)
	var b strings.Builder
	for _, l := range links {
		a := l.Attrs()
		fmt.Fprintf(&b, "%s master %d\n", a.Name, a.MasterIndex)
	}
	return b.String()
}

// running says whether process pid runs (a zombie nobody reaped, its
// parent killed, does not).
func running(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(b, ')')
	return i < 0 || len(b) < i+3 || (b[i+2] != 'Z' && b[i+2] != 'X')
}
