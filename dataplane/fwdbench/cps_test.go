package fwdbench

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseWrk(t *testing.T) {
	const clean = `Running 1s test @ http://10.201.1.100:80/
  1 threads and 16 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     2.41ms    1.02ms  11.22ms   79.21%
    Req/Sec     6.54k   312.44     6.98k    70.00%
  6512 requests in 1.00s, 1.02MB read
Requests/sec:   6498.73
Transfer/sec:      1.02MB
`
	var r Result
	require.NoError(t, parseWrk(clean, &r))
	assert.Equal(t, 6498.73, r.CPS)
	assert.Zero(t, r.LossPercent)

	withErrors := `  900 requests in 1.00s, 140.00KB read
  Socket errors: connect 50, read 25, write 0, timeout 25
Requests/sec:    899.10
`
	r = Result{}
	require.NoError(t, parseWrk(withErrors, &r))
	assert.Equal(t, 899.10, r.CPS)
	assert.InDelta(t, 10.0, r.LossPercent, 1e-9, "100 errors of 1000 attempts")

	assert.Error(t, parseWrk("unable to connect to 10.201.1.100:80 Connection refused\n", &Result{}))
}
