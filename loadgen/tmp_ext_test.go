package loadgen

import (
	"context"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/lvslab/lvslab/loadgen/wire"
)

func TestExternal(t *testing.T) {
	tgt := os.Getenv("EXT_TARGET")
	if tgt == "" {
		t.Skip()
	}
	res, _ := Run(context.Background(), Config{Target: netip.MustParseAddrPort(tgt), Kind: wire.HTTP, Concurrency: 8, Duration: 4 * time.Second, KeepAlive: true, Workers: 1})
	t.Log(res.Requests())
}
