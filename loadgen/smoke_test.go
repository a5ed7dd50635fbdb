package loadgen

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/lvslab/lvslab/loadgen/realserver"
	"github.com/lvslab/lvslab/loadgen/wire"
	"github.com/lvslab/lvslab/reports/metrics"
	"github.com/stretchr/testify/require"
)

func TestSmoke(t *testing.T) {
	for _, kind := range []wire.Kind{wire.HTTP, wire.TCP, wire.UDP} {
		for _, ka := range []bool{false, true} {
			s, err := realserver.Listen(realserver.Config{Listen: netip.MustParseAddrPort("127.0.0.1:0"), Kind: kind, ID: "rs1", ResponseBytes: 100})
			require.NoError(t, err)
			res, err := Run(context.Background(), Config{Target: s.Addr(), Kind: kind, Concurrency: 4, Duration: 500 * time.Millisecond, KeepAlive: ka, Workers: 1})
			require.NoError(t, err)
			t.Logf("%v ka=%v: req=%d ok=%d out=%v servers=%v p50=%d st=%+v", kind, ka, res.Requests(), res.Outcomes[metrics.OK], res.Outcomes, *res.Servers["rs1"], res.Latency.ValueAtQuantile(50), s.Stats())
			s.Close()
		}
	}
}
