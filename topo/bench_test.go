package topo_test

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/lvslab/lvslab/topo"
)

// natLabOf is a VS/NAT lab of n nodes: a client and a director on a public
// network, n-2 real servers on internal networks of at most 250 (a bridge
// takes 1024 ports), each routing back through the director.
func natLabOf(n int) *topo.Lab {
	l := &topo.Lab{
		Name:     fmt.Sprintf("bench%d", n),
		Networks: []topo.Network{{Name: "public", Subnet: netip.MustParsePrefix("192.168.0.0/24")}},
		Nodes: []topo.Node{
			{Name: "client", Role: topo.Client, Interfaces: []topo.Interface{{Network: "public", Addresses: []netip.Prefix{netip.MustParsePrefix("192.168.0.254/24")}}}},
			{Name: "director", Role: topo.Director, Interfaces: []topo.Interface{{Network: "public", Addresses: []netip.Prefix{netip.MustParsePrefix("192.168.0.1/24")}}}},
		},
	}
	svc := topo.Service{VIP: netip.MustParseAddr("192.168.0.100"), Port: 80, Protocol: "tcp"}
	for i := range n - 2 {
		net := i / 250
		name := fmt.Sprintf("internal%d", net)
		if l.Network(name) == nil {
			l.Networks = append(l.Networks, topo.Network{Name: name, Subnet: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(net), 0, 0}), 24)})
			l.Nodes[1].Interfaces = append(l.Nodes[1].Interfaces, topo.Interface{Network: name,
				Addresses: []netip.Prefix{netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(net), 0, 1}), 24)}})
		}
		rs := fmt.Sprintf("rs%d", i)
		l.Nodes = append(l.Nodes, topo.Node{Name: rs, Role: topo.RealServer, Interfaces: []topo.Interface{{Network: name,
			Addresses: []netip.Prefix{netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(net), 0, byte(2 + i%250)}), 24)}}}})
		svc.Dests = append(svc.Dests, topo.Dest{Node: rs, Port: 80, Weight: 1, Forward: topo.NAT})
	}
	l.Services = []topo.Service{svc}
	if err := l.ApplyServices(); err != nil {
		panic(err)
	}
	return l
}

// shellScripts writes the same lab as the shell script an operator would
// write with ip(8): named namespaces, one ip command per step. The teardown
// script waits, as Destroy does, until the kernel has removed every node's
// veth from the fabric.
func shellScripts(l *topo.Lab, prefix string) (up, down string) {
	var b strings.Builder
	fab := prefix + "fab"
	b.WriteString("set -e\n")
	fmt.Fprintf(&b, "ip netns add %s\n", fab)
	for i, nw := range l.Networks {
		fmt.Fprintf(&b, "ip -n %s link add br%d mtu %d type bridge\nip -n %s link set br%d up\n", fab, i, nw.MTUOf(), fab, i)
	}
	netIndex := map[string]int{}
	for i, nw := range l.Networks {
		netIndex[nw.Name] = i
	}
	var d strings.Builder
	for i, n := range l.Nodes {
		ns := fmt.Sprintf("%s-%d", prefix, i)
		fmt.Fprintf(&b, "ip netns add %s\nip -n %s link set lo up\n", ns, ns)
		for j, ifc := range n.Interfaces {
			v := fmt.Sprintf("v%x.%d", i, j)
			fmt.Fprintf(&b, "ip -n %s link add %s type veth peer name %s netns %s\n", fab, v, topo.IfName(j), ns)
			fmt.Fprintf(&b, "ip -n %s link set %s master br%d up\n", fab, v, netIndex[ifc.Network])
			fmt.Fprintf(&b, "ip -n %s link set %s up\n", ns, topo.IfName(j))
			for _, a := range ifc.Addresses {
				fmt.Fprintf(&b, "ip -n %s addr add %s dev %s\n", ns, a, topo.IfName(j))
			}
		}
		for _, r := range n.Routes {
			fmt.Fprintf(&b, "ip -n %s route add %s via %s\n", ns, r.To, r.Via)
		}
		for k, v := range n.Sysctls {
			fmt.Fprintf(&b, "ip netns exec %s sysctl -qw %s=%s\n", ns, k, v)
		}
		fmt.Fprintf(&d, "ip netns del %s\n", ns)
	}
	fmt.Fprintf(&d, "while ip -n %s -o link show type veth | grep -q .; do sleep 0.01; done\nip netns del %s\n", fab, fab)
	return b.String(), d.String()
}

func runScript(b *testing.B, script string) (time.Duration, error) {
	b.Helper()
	path := filepath.Join(b.TempDir(), "lab.sh")
	require.NoError(b, os.WriteFile(path, []byte(script), 0o700))
	start := time.Now()
	out, err := exec.Command("sh", path).CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("%w: %s", err, out)
	}
	return time.Since(start), nil
}

// BenchmarkLab builds and tears down NAT labs of 10, 100 and 1000 nodes with
// Build/Destroy and, in the same run, with a shell script of ip commands.
// Metrics: build-ms/node, teardown-ms/node, and the same for the script,
// with the ratios (script time / lvslab time). Run with -benchtime=1x.
func BenchmarkLab(b *testing.B) {
	requireNamespaces(b)
	if _, err := exec.LookPath("ip"); err != nil {
		b.Skip("the ip command (iproute2) is needed for the baseline")
	}
	for _, n := range []int{10, 100, 1000} {
		b.Run(fmt.Sprintf("nodes=%d", n), func(b *testing.B) {
			lab := natLabOf(n)
			f := topo.Probe()
			var build, teardown, shBuild, shTeardown time.Duration
			for range b.N {
				start := time.Now()
				in, err := topo.Build(context.Background(), lab, topo.Options{RunDir: b.TempDir(), Features: &f, Workers: benchWorkers})
				require.NoError(b, err)
				build += time.Since(start)
				start = time.Now()
				require.NoError(b, in.Destroy())
				teardown += time.Since(start)

				up, down := shellScripts(lab, fmt.Sprintf("lvsbench%d", n))
				d, err := runScript(b, up)
				if err != nil {
					runScript(b, down) // leave nothing behind, then report
					b.Fatal(err)
				}
				shBuild += d
				d, err = runScript(b, down)
				require.NoError(b, err)
				shTeardown += d
			}
			per := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 / float64(n*b.N) }
			b.ReportMetric(per(build), "build-ms/node")
			b.ReportMetric(per(teardown), "teardown-ms/node")
			b.ReportMetric(per(shBuild), "ip-build-ms/node")
			b.ReportMetric(per(shTeardown), "ip-teardown-ms/node")
			b.ReportMetric(float64(shBuild)/float64(build), "build-speedup")
			b.ReportMetric(float64(shTeardown)/float64(teardown), "teardown-speedup")
		})
	}
}

var benchWorkers = func() int {
	var n int
	fmt.Sscan(os.Getenv("LVSLAB_BENCH_WORKERS"), &n)
	return n
}()
