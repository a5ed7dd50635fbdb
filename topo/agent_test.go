package topo_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/lvslab/lvslab/topo"
	"github.com/lvslab/lvslab/topo/agent"
)

// The "whereami" agent answers on its control socket with its node and the
// addresses it sees, proving it runs inside the node's namespace; "broken"
// fails before it is ready.
func init() {
	agent.Register("whereami", func(ctx context.Context, env *agent.Env, args []string) error {
		l, err := env.Listen()
		if err != nil {
			return err
		}
		go func() { <-ctx.Done(); l.Close() }()
		env.Ready()
		for {
			c, err := l.Accept()
			if err != nil {
				return ctx.Err()
			}
			addrs, _ := net.InterfaceAddrs()
			fmt.Fprintf(c, "%s %s %v\n", env.Node, strings.Join(args, ","), addrs)
			c.Close()
		}
	})
	agent.Register("broken", func(context.Context, *agent.Env, []string) error {
		return errors.New("cannot open the widget")
	})
}

func TestAgentRunsInsideItsNode(t *testing.T) {
	in := build(t, "nat")
	a, err := in.StartAgent("rs2", "whereami", "x", "y")
	require.NoError(t, err)
	st, err := os.Stat(a.Socket)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), st.Mode().Perm())
	c, err := a.Dial()
	require.NoError(t, err)
	line, err := bufio.NewReader(c).ReadString('\n')
	require.NoError(t, err)
	c.Close()
	assert.True(t, strings.HasPrefix(line, "rs2 x,y "), line)
	assert.Contains(t, line, "10.1.1.3/24")
	assert.NotContains(t, line, "192.168.1.", "it sees only its own namespace")

	infos, err := topo.List(filepath.Dir(in.Dir))
	require.NoError(t, err)
	require.Len(t, infos, 1)
	require.Len(t, infos[0].Agents, 1)
	assert.True(t, infos[0].Agents[0].Alive)

	require.NoError(t, a.Stop(2*time.Second))
	select {
	case <-a.Done():
	default:
		t.Fatal("a stopped agent is done")
	}
}

func TestAgentFailureIsReported(t *testing.T) {
	in := build(t, "nat")
	_, err := in.StartAgent("rs1", "broken")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "cannot open the widget")
	_, err = in.StartAgent("rs1", "nosuchkind")
	require.Error(t, err)
	assert.Contains(t, err.Error(), `unknown kind "nosuchkind"`)
}

// TestDataplaneEditsTheDropSets: the director's kernel drops exactly the
// services in its sets. With tcp VIP:80 and udp VIP:0 dropped, a SYN to
// port 80 and a datagram to any udp port get no answer, a SYN to port 81
// gets the stack's RST. Each probe to a dropped service is followed by one
// that is answered over the same link, so the counters read after the
// answer account for both, with no waiting.
func TestDataplaneEditsTheDropSets(t *testing.T) {
	in := build(t, "nat")
	h, err := in.NetNS("director")
	require.NoError(t, err)
	vip := netip.MustParseAddr("192.168.1.110")
	svcs := []topo.DropService{{Proto: unix.IPPROTO_TCP, Addr: vip, Port: 80}, {Proto: unix.IPPROTO_UDP, Addr: vip}}
	require.NoError(t, topo.AddDropServices(int(h.Fd()), svcs...))
	list := func(set string) string {
		out, err := in.Output("director", "nft", "list", "set", "netdev", topo.DropTable, set)
		require.NoError(t, err)
		return string(out)
	}
	assert.Contains(t, list(topo.DropServices), "elements = { 192.168.1.110 . tcp . 80 }")
	assert.Contains(t, list(topo.DropAllPorts), "elements = { 192.168.1.110 . udp }")

	refused := func(port uint16) error {
		return in.Do("client", func() error {
			c, err := net.DialTimeout("tcp", netip.AddrPortFrom(vip, port).String(), 5*time.Second)
			if err == nil {
				c.Close()
			}
			return err
		})
	}
	require.NoError(t, in.Do("client", func() error {
		// A non-blocking connect sends its SYN before it returns.
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		if err := unix.Connect(fd, &unix.SockaddrInet4{Addr: vip.As4(), Port: 80}); !errors.Is(err, unix.EINPROGRESS) {
			return fmt.Errorf("connect: %v, want EINPROGRESS", err)
		}
		c, err := net.Dial("udp", netip.AddrPortFrom(vip, 9999).String())
		if err != nil {
			return err
		}
		defer c.Close()
		_, err = c.Write([]byte("dropped"))
		return err
	}))
	require.ErrorIs(t, refused(81), unix.ECONNREFUSED, "a port without a service: the director's stack answers")
	snmp := snmpCounters(t, in, "director")
	assert.Equal(t, "1", snmp["Tcp OutRsts"], "RSTs: port 81 only")
	assert.Equal(t, "0", snmp["Icmp OutDestUnreachs"], "the udp datagram to the port-0 service was dropped")

	require.NoError(t, topo.DelDropServices(int(h.Fd()), svcs...))
	assert.NotContains(t, list(topo.DropServices), "192.168.1.110")
	assert.NotContains(t, list(topo.DropAllPorts), "192.168.1.110")
	require.ErrorIs(t, refused(80), unix.ECONNREFUSED, "without its service, port 80 is the stack's")

	h2, err := in.NetNS("client")
	require.NoError(t, err)
	assert.Error(t, topo.AddDropServices(int(h2.Fd()), svcs...), "only a director has the sets")
	assert.ErrorContains(t, topo.AddDropServices(int(h.Fd()), topo.DropService{Proto: unix.IPPROTO_TCP, Addr: netip.MustParseAddr("2001:db8::1"), Port: 80}), "IPv4")
}

// snmpCounters reads node's /proc/net/snmp as "Proto Name" → value.
func snmpCounters(t *testing.T, in *topo.Instance, node string) map[string]string {
	t.Helper()
	out, err := in.Output(node, "cat", "/proc/net/snmp")
	require.NoError(t, err)
	counters := map[string]string{}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	for i := 0; i+1 < len(lines); i += 2 {
		names, values := strings.Fields(lines[i]), strings.Fields(lines[i+1])
		for k := 1; k < len(names) && k < len(values); k++ {
			counters[strings.TrimSuffix(names[0], ":")+" "+names[k]] = values[k]
		}
	}
	return counters
}
