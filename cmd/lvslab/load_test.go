package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lvslab/lvslab/topo"
)

// buildLvslab builds this command into a temporary folder.
func ip(t *testing.T, args ...string) {
	t.Helper()
	out, err := exec.Command("ip", args...).CombinedOutput()
	require.NoError(t, err, "ip %s: %s", strings.Join(args, " "), out)
}

// TestServeAndLoadAcrossTwoNamespaces runs `lvslab serve` in a server
// namespace and `lvslab load` in a client namespace joined by a veth pair,
// with the client binding three source addresses in turn, and checks the
// report set it writes. Both namespaces and the link are gone afterwards.
func TestServeAndLoadAcrossTwoNamespaces(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for network namespaces")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs iproute2's ip")
	}
	if testing.Short() {
		t.Skip("builds a lab")
	}
	bin := lvslab(t)
	tag := fmt.Sprintf("%x", os.Getpid()&0xffff) + fmt.Sprintf("%x", time.Now().UnixNano()&0xfff)
	cns, sns := "lvsc"+tag, "lvss"+tag
	va, vb := "lvsa"+tag, "lvsb"+tag
	t.Cleanup(func() {
		exec.Command("ip", "netns", "del", cns).Run()
		exec.Command("ip", "netns", "del", sns).Run()
		// Proof that nothing is left: no namespace, no link of ours in the root namespace.
		out, _ := exec.Command("ip", "netns", "list").Output()
		assert.NotContains(t, string(out), tag, "namespaces left behind")
		require.Eventually(t, func() bool {
			out, _ := exec.Command("ip", "-o", "link", "show").Output()
			return !strings.Contains(string(out), tag)
		}, 10*time.Second, 100*time.Millisecond, "links left behind")
	})
	ip(t, "netns", "add", cns)
	ip(t, "netns", "add", sns)
	ip(t, "link", "add", va, "netns", cns, "type", "veth", "peer", "name", vb, "netns", sns)
	for _, c := range [][]string{
		{cns, "addr", "add", "10.250.7.1/24", "dev", va},
		{cns, "addr", "add", "10.250.7.10/24", "dev", va},
		{cns, "addr", "add", "10.250.7.11/24", "dev", va},
		{cns, "addr", "add", "10.250.7.12/24", "dev", va},
		{cns, "link", "set", va, "up"},
		{cns, "link", "set", "lo", "up"},
		{sns, "addr", "add", "10.250.7.2/24", "dev", vb},
		{sns, "link", "set", vb, "up"},
		{sns, "link", "set", "lo", "up"},
	} {
		ip(t, append([]string{"-n", c[0]}, c[1:]...)...)
	}
	// Frames sent before the link watcher attached the veths' qdiscs are dropped.
	require.NoError(t, topo.WaitUpNamed(cns, 10*time.Second, va))
	require.NoError(t, topo.WaitUpNamed(sns, 10*time.Second, vb))

	for _, kind := range []string{"http", "tcp", "udp"} {
		t.Run(kind, func(t *testing.T) {
			srv := exec.Command("ip", "netns", "exec", sns, bin, "serve", "--listen", "10.250.7.2:8080", "--ports", "8443", "--kind", kind, "--id", "rs1", "--response-bytes", "512")
			stdout, err := srv.StdoutPipe()
			require.NoError(t, err)
			require.NoError(t, srv.Start())
			defer func() {
				srv.Process.Signal(os.Interrupt)
				srv.Wait()
			}()
			line, err := bufio.NewReader(stdout).ReadString('\n')
			require.NoError(t, err)
			require.Contains(t, line, "serving")
			require.Contains(t, line, "10.250.7.2:8080, 10.250.7.2:8443", "one server on both ports")

			out := t.TempDir()
			load := exec.Command("ip", "netns", "exec", cns, bin, "load", "--target", "10.250.7.2:8080", "--kind", kind,
				"--rate", "500/s", "--duration", "2s", "--source-range", "10.250.7.10-10.250.7.12", "--weight", "rs1=1", "--out", out)
			msg, err := load.CombinedOutput()
			require.NoError(t, err, "%s", msg)
			t.Logf("%s", msg)

			for _, f := range []string{"report.json", "report.md", "report.html", "throughput.png", "latency.png", "cdf.png", "shares.png"} {
				assert.FileExists(t, filepath.Join(out, f))
			}
			b, err := os.ReadFile(filepath.Join(out, "report.json"))
			require.NoError(t, err)
			var rep struct {
				Load struct {
					Requests    uint64 `json:"requests"`
					Errors      uint64 `json:"errors"`
					Sources     int    `json:"source_addresses"`
					Realservers []struct {
						ID          string  `json:"id"`
						Connections uint64  `json:"connections"`
						Share       float64 `json:"share"`
					} `json:"realservers"`
				} `json:"load"`
			}
			require.NoError(t, json.Unmarshal(b, &rep))
			assert.Equal(t, uint64(1000), rep.Load.Requests)
			if kind == "udp" {
				// Datagrams may be lost when the shared CPUs are starved;
				// a lost one is a timeout, never a misattribution.
				assert.Less(t, rep.Load.Errors, uint64(100))
			} else {
				assert.Zero(t, rep.Load.Errors)
			}
			assert.Equal(t, 3, rep.Load.Sources)
			require.Len(t, rep.Load.Realservers, 1)
			assert.Equal(t, "rs1", rep.Load.Realservers[0].ID)
			assert.Equal(t, 1000-rep.Load.Errors, rep.Load.Realservers[0].Connections)
		})
	}
}

func TestFlagErrorsNameTheFlag(t *testing.T) {
	for _, tc := range []struct {
		args []string
		flag string
	}{
		{[]string{"load", "--target", "10.0.0.1", "--rate", "1/s", "--out", "x"}, "--target"},
		{[]string{"load", "--target", "10.0.0.1:80", "--rate", "fast", "--out", "x"}, "--rate"},
		{[]string{"load", "--target", "10.0.0.1:80", "--out", "x"}, "--rate"},
		{[]string{"load", "--target", "10.0.0.1:80", "--rate", "1/s", "--kind", "sctp", "--out", "x"}, "--kind"},
		{[]string{"load", "--target", "10.0.0.1:80", "--rate", "1/s", "--source-range", "10.0.0.9-10.0.0.1", "--out", "x"}, "--source-range"},
		{[]string{"load", "--target", "10.0.0.1:80", "--rate", "1/s", "--weight", "rs1", "--out", "x"}, "--weight"},
		{[]string{"load", "--target", "10.0.0.1:80", "--rate", "1/s"}, "--out"},
		{[]string{"load", "--target", "10.0.0.1:80", "--rate", "1/s", "--duration", "0s", "--out", "x"}, "--duration"},
		{[]string{"serve", "--listen", "10.0.0.1", "--id", "rs1"}, "--listen"},
		{[]string{"serve", "--listen", "127.0.0.1:0", "--id", "rs1", "--service-time", "gauss:1ms"}, "--service-time"},
		{[]string{"serve", "--listen", "127.0.0.1:0", "--id", "rs1", "--fault", "crash"}, "--fault"},
		{[]string{"serve", "--listen", "127.0.0.1:8080", "--id", "rs1", "--ports", "443,70000"}, "--ports"},
		{[]string{"serve", "--listen", "127.0.0.1:8080", "--id", "rs1", "--ports", "443,8080"}, "--ports"},
		{[]string{"serve", "--listen", "127.0.0.1:0", "--id", "rs1", "--kind", "udp", "--response-bytes", "70000"}, "--response-bytes"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			resetFlags(root)
			root.SetArgs(tc.args)
			err := root.Execute()
			require.Error(t, err)
			assert.True(t, strings.HasPrefix(err.Error(), tc.flag+":"), "%v", err)
			assert.Equal(t, 2, exitCode(err))
		})
	}
}

// resetFlags puts every flag back to its default: the command tree is a
// package variable and keeps values between Execute calls.
func resetFlags(c *cobra.Command) {
	c.Flags().VisitAll(func(f *pflag.Flag) {
		if sv, ok := f.Value.(pflag.SliceValue); ok {
			sv.Replace(nil)
		} else {
			f.Value.Set(f.DefValue)
		}
		f.Changed = false
	})
	for _, sub := range c.Commands() {
		resetFlags(sub)
	}
}
