package engine

import (
	"bytes"
	"net"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lvslab/lvslab/dataplane/header"
	"github.com/lvslab/lvslab/dataplane/header/headertest"
)

// TestAwaitFold: a connection shows in ipvsadm --stats only once the
// estimator folded it; a fold request over the control socket returns
// after that fold.
func TestAwaitFold(t *testing.T) {
	e := testEngine(t)
	sock := filepath.Join(t.TempDir(), "ctl")
	l, err := net.Listen("unix", sock)
	require.NoError(t, err)
	defer l.Close()
	go e.Serve(l)

	conns := func() string {
		t.Helper()
		var out, errb bytes.Buffer
		code, err := Ipvsadm(sock, []string{"-L", "-n", "--stats", "--exact", "-t", "192.168.1.110:80"}, nil, &out, &errb)
		require.NoError(t, err)
		require.Equal(t, 0, code, errb.String())
		return out.String()
	}
	syn := headertest.Spec{Src: clientAddr, Dst: natVIP, SrcPort: 40000, DstPort: 80, TCPFlags: header.TCPFlagSYN, DF: true}
	receive(e, newBatch(4, 2), 0, headertest.TCP(syn))
	assert.Contains(t, conns(), "-> 10.1.1.2:8080                       0        0", "not folded yet")
	require.NoError(t, AwaitFold(sock))
	assert.Contains(t, conns(), "-> 10.1.1.2:8080                       1        1", "folded")
}
