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

func TestDataplaneEditsTheVIPDropSet(t *testing.T) {
	in := build(t, "dr")
	h, err := in.NetNS("director")
	require.NoError(t, err)
	extra := netip.MustParseAddr("192.168.1.111")
	require.NoError(t, topo.AddDropVIPs(int(h.Fd()), extra))
	out, err := in.Output("director", "nft", "list", "set", "netdev", topo.DropTable, topo.DropSet)
	require.NoError(t, err)
	assert.Contains(t, string(out), "192.168.1.110, 192.168.1.111")
	require.NoError(t, topo.DelDropVIPs(int(h.Fd()), extra))
	out, err = in.Output("director", "nft", "list", "set", "netdev", topo.DropTable, topo.DropSet)
	require.NoError(t, err)
	assert.NotContains(t, string(out), "192.168.1.111")
	h2, err := in.NetNS("client")
	require.NoError(t, err)
	assert.Error(t, topo.AddDropVIPs(int(h2.Fd()), extra), "only a director has the set")
}
