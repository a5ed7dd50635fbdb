package main

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// lvslab up starts the director with the scenario's services, and
// lvslab ipvsadm talks to it as ipvsadm talks to the kernel: listings,
// errors with ipvsadm's exit statuses, restore from standard input.
func TestIpvsadmAgainstALab(t *testing.T) {
	runDir := t.TempDir()
	upLab(t, runDir, "nat", "classic-nat")

	out, err := run(t, runDir, "ipvsadm", "--lab", "classic-nat", "-L", "-n")
	require.NoError(t, err, out)
	assert.Equal(t, `IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
TCP  192.168.1.110:80 wlc
  -> 10.1.1.2:80                  Masq    3      0          0         
  -> 10.1.1.3:80                  Masq    2      0          0         
  -> 10.1.1.4:80                  Masq    1      0          0         
`, out)

	out, err = run(t, runDir, "exec", "classic-nat", "client", "--", "curl", "-sS", "-m", "5", "-D", "-", "-o", "/dev/null", "http://192.168.1.110/")
	require.NoError(t, err, out)
	// wlc with every overhead 0 takes the first destination of the
	// kernel's list, where each new one is added at the head: rs3.
	assert.Contains(t, out, "X-Real-Server: rs3", "up starts the real servers")

	out, err = run(t, runDir, "ipvsadm", "--lab", "classic-nat", "--director", "director", "-A", "-t", "192.168.1.110:80")
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee, out)
	assert.Equal(t, 255, ee.ExitCode())
	assert.Equal(t, "Service already exists\n", out)

	cmd := exec.Command(lvslab(t), "ipvsadm", "--lab=classic-nat", "-R")
	cmd.Env = append(cmd.Environ(), "LVSLAB_RUN_DIR="+runDir)
	cmd.Stdin = strings.NewReader("-A -u 192.168.1.110:53 -s rr\n-a -u 192.168.1.110:53 -r 10.1.1.2:53 -m\n")
	b, err := cmd.CombinedOutput()
	require.NoError(t, err, string(b))
	out, err = run(t, runDir, "ipvsadm", "--lab", "classic-nat", "-S", "-n")
	require.NoError(t, err, out)
	assert.Contains(t, out, "-A -u 192.168.1.110:53 -s rr\n-a -u 192.168.1.110:53 -r 10.1.1.2:53 -m -w 1\n")

	_, err = run(t, runDir, "ipvsadm", "-L", "-n")
	require.ErrorAs(t, err, &ee)
	assert.Equal(t, 2, ee.ExitCode(), "--lab is required")
}

// TestUpLoadsTheIpvsadmBlock: `lvslab up` loads the director's whole table,
// the scenario's ipvsadm block included, as `lvslab run` does.
func TestUpLoadsTheIpvsadmBlock(t *testing.T) {
	runDir := t.TempDir()
	upLab(t, runDir, "sticky", "sticky")
	out, err := run(t, runDir, "ipvsadm", "--lab", "sticky", "-S", "-n")
	require.NoError(t, err, out)
	assert.Contains(t, out, "-A -t 192.168.1.111:80 -s wrr -p 1800 -M 255.255.255.0\n", "the block's service")
	assert.Contains(t, out, "-A -t 192.168.1.110:80 -s rr -p 360\n", "the structured service")
}
