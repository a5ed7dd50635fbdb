package picks

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// run parses dests and flows as the CLI does and returns the text output.
func run(t *testing.T, cfg Config, dests, flows []string) string {
	t.Helper()
	for _, s := range dests {
		d, err := ParseDest(s)
		require.NoError(t, err)
		cfg.Dests = append(cfg.Dests, d)
	}
	for _, s := range flows {
		f, err := ParseFlow(s)
		require.NoError(t, err)
		cfg.Flows = append(cfg.Flows, f)
	}
	res, err := Run(cfg)
	require.NoError(t, err)
	var out bytes.Buffer
	require.NoError(t, res.WriteText(&out))
	return out.String()
}

// dests returns "10.1.0.N:80,w=W" for the weights given, N counting from 1.
func dests(weights ...int) []string {
	var out []string
	for i, w := range weights {
		out = append(out, fmt.Sprintf("10.1.0.%d:80,w=%d", i+1, w))
	}
	return out
}

// lines renders picks of one source as the command prints them; each item
// is a dest number (10.1.0.N:80) or 0 for none.
func lines(src string, picks ...int) string {
	var b strings.Builder
	for i, n := range picks {
		dest := "none"
		if n > 0 {
			dest = fmt.Sprintf("10.1.0.%d:80", n)
		}
		fmt.Fprintf(&b, "%d %s %s\n", i+1, src, dest)
	}
	return b.String()
}

func TestSpecExamplesThroughTheEngine(t *testing.T) {
	cases := []struct {
		name  string
		cfg   Config
		dests []string
		flows []string
		want  string
	}{
		{"rr/the last added dest comes first", Config{Scheduler: "rr", Picks: 6}, dests(1, 1, 1), nil,
			lines("-", 3, 2, 1, 3, 2, 1)},
		{"wrr/4,3,2 added in that order", Config{Scheduler: "wrr", Picks: 9}, dests(4, 3, 2), nil,
			lines("-", 3, 2, 1, 1, 2, 1, 3, 2, 1)},
		{"wrr/gcd 2 skips half the passes", Config{Scheduler: "wrr", Picks: 9}, dests(2, 4), nil,
			lines("-", 2, 1, 2, 2, 1, 2, 2, 1, 2)},
		{"wrr/all weights 0 refuse", Config{Scheduler: "wrr", Picks: 2}, dests(0, 0), nil, lines("-", 0, 0)},
		{"wlc/held connections on 1,2,3", Config{Scheduler: "wlc", Picks: 12}, dests(1, 2, 3), nil,
			lines("-", 3, 2, 1, 3, 2, 3, 3, 2, 1, 3, 2, 3)},
		{"sed/held connections on 1,2,3", Config{Scheduler: "sed", Picks: 12}, dests(1, 2, 3), nil,
			lines("-", 3, 2, 3, 3, 2, 1, 3, 2, 3, 3, 2, 1)},
		{"nq/held connections on 1,2,3", Config{Scheduler: "nq", Picks: 12}, dests(1, 2, 3), nil,
			lines("-", 3, 2, 1, 3, 3, 2, 3, 2, 3, 3, 2, 1)},
		{"lc/held connections ignore weights", Config{Scheduler: "lc", Picks: 6}, dests(1, 2, 3), nil,
			lines("-", 3, 2, 1, 3, 2, 1)},
		{"sed/10 and 1", Config{Scheduler: "sed", Picks: 12}, dests(1, 10), nil,
			lines("-", 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 1, 2)},
		{"lc/inactive connections spread like held ones", Config{Scheduler: "lc", Picks: 4, Conn: Inactive}, dests(1, 1), nil,
			lines("-", 2, 1, 2, 1)},
		{"lc/forgotten connections leave the first in list", Config{Scheduler: "lc", Picks: 3, Conn: Forget}, dests(1, 1), nil,
			lines("-", 2, 2, 2)},
		{"fo/the highest weight takes every connection", Config{Scheduler: "fo", Picks: 3}, dests(3, 5, 1), nil,
			lines("-", 2, 2, 2)},
		{"ovf/weights 2,3,1 fill to weight+1", Config{Scheduler: "ovf", Picks: 9}, dests(2, 3, 1), nil,
			lines("-", 2, 2, 2, 2, 1, 1, 1, 3, 3)},
		{"lblc/eight held connections to one VIP", Config{Scheduler: "lblc", Picks: 8}, dests(3, 2, 1), []string{"10.2.0.1>10.0.0.100:80"},
			lines("10.2.0.1", 3, 3, 2, 2, 2, 1, 1, 1)},
		{"lblcr/eight held connections to one VIP", Config{Scheduler: "lblcr", Picks: 8}, dests(3, 2, 1), []string{"10.2.0.1>10.0.0.100:80"},
			lines("10.2.0.1", 3, 3, 2, 2, 2, 1, 1, 1)},
		{"sh/list A(1), B(2), C(0) refuses the client on C", Config{Scheduler: "sh", Picks: 6}, dests(0, 2, 1),
			[]string{"192.168.1.1", "192.168.1.2", "192.168.2.1", "192.168.2.2", "192.168.2.3", "10.1.2.3"},
			"1 192.168.1.1 10.1.0.3:80\n2 192.168.1.2 10.1.0.2:80\n3 192.168.2.1 10.1.0.2:80\n" +
				"4 192.168.2.2 none\n5 192.168.2.3 10.1.0.3:80\n6 10.1.2.3 10.1.0.2:80\n"},
		{"sh/sh-port hashes the source port (kipvs sh.out, picks 37-42)", Config{Scheduler: "sh", Flags: "sh-port", Picks: 6}, dests(1, 1, 1),
			[]string{"10.2.0.1:10004", "10.2.0.1:10005", "10.2.0.1:10006", "10.2.0.1:10007", "10.2.0.1:10008", "10.2.0.1:10009"},
			lines("10.2.0.1", 2, 3, 2, 1, 2, 1)},
		{"mh/client lookups of the spec example", Config{Scheduler: "mh", Picks: 4},
			[]string{"10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80"},
			[]string{"192.168.1.1", "192.168.1.2", "192.168.1.3", "203.0.113.7"},
			"1 192.168.1.1 10.0.0.1:80\n2 192.168.1.2 10.0.0.3:80\n3 192.168.1.3 10.0.0.2:80\n4 203.0.113.7 10.0.0.3:80\n"},
		{"dh/the VIP picks the dest", Config{Scheduler: "dh", Picks: 4}, dests(1, 1, 1, 1, 1),
			[]string{"10.2.0.1>10.0.0.100", "10.2.0.2>10.0.0.100", "10.2.0.1>10.0.0.101", "10.2.0.1>[fd00::1]:80"},
			"1 10.2.0.1 10.1.0.2:80\n2 10.2.0.2 10.1.0.2:80\n3 10.2.0.1 10.1.0.5:80\n4 10.2.0.1 10.1.0.5:80\n"},
		{"dh/IPv6 dests and VIPs", Config{Scheduler: "dh", Picks: 2},
			[]string{"[fd00:1::1]:80", "[fd00:1::2]:80", "[fd00:1::3]:80"},
			[]string{"fd00:2::1>fd00::100", "fd00:2::1>[fd12:3456:789a::1]:80"},
			"1 fd00:2::1 [fd00:1::3]:80\n2 fd00:2::1 [fd00:1::1]:80\n"},
		{"rr/an overloaded dest is skipped until its connections go", Config{Scheduler: "rr", Picks: 5},
			[]string{"10.1.0.1:80,x=2", "10.1.0.2:80"}, nil, lines("-", 2, 1, 2, 1, 2)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			assert.Equal(t, c.want, run(t, c.cfg, c.dests, c.flows))
		})
	}
}

func TestTwosSeedRepeats(t *testing.T) {
	seed := uint64(42)
	cfg := Config{Scheduler: "twos", Picks: 50, Seed: &seed}
	first := run(t, cfg, dests(1, 2, 3), nil)
	assert.Equal(t, first, run(t, cfg, dests(1, 2, 3), nil))
	other := uint64(43)
	cfg.Seed = &other
	assert.NotEqual(t, first, run(t, cfg, dests(1, 2, 3), nil))
}

func TestFlowsWithoutPortCountEphemeralPorts(t *testing.T) {
	// With sh-port a port-less flow gets 10000, 10001, … like a client: the
	// same picks as flows that name those ports.
	implicit := run(t, Config{Scheduler: "sh", Flags: "sh-port", Picks: 6}, dests(1, 1, 1), []string{"10.2.0.7"})
	var ports []string
	for p := 10000; p < 10006; p++ {
		ports = append(ports, fmt.Sprintf("10.2.0.7:%d", p))
	}
	explicit := run(t, Config{Scheduler: "sh", Flags: "sh-port", Picks: 6}, dests(1, 1, 1), ports)
	assert.Equal(t, explicit, implicit)
}

func TestJSONOutput(t *testing.T) {
	d, err := ParseDest("10.1.0.1:80,w=2")
	require.NoError(t, err)
	f, err := ParseFlow("192.168.1.1")
	require.NoError(t, err)
	res, err := Run(Config{Scheduler: "sh", Flags: "sh-fallback,sh-port", Dests: []DestSpec{d}, Flows: []FlowSpec{f, {}}, Picks: 2})
	require.NoError(t, err)
	var out bytes.Buffer
	require.NoError(t, res.WriteJSON(&out))
	var got map[string]any
	require.NoError(t, json.Unmarshal(out.Bytes(), &got))
	assert.Equal(t, "sh", got["scheduler"])
	assert.Equal(t, []any{"sh-fallback", "sh-port"}, got["flags"])
	assert.Equal(t, "current", got["kernel_profile"])
	assert.Equal(t, []any{
		map[string]any{"n": 1.0, "src": "192.168.1.1", "dest": "10.1.0.1:80"},
		map[string]any{"n": 2.0, "src": nil, "dest": "10.1.0.1:80"},
	}, got["picks"])
	assert.Equal(t, []any{map[string]any{"address": "10.1.0.1:80", "weight": 2.0, "picks": 2.0,
		"active_conn": 2.0, "inact_conn": 0.0, "overloaded": false}}, got["dests"])
}

func TestBadInputNamesItsPlace(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"10.1.0.1", `"10.1.0.1" is not ADDR:PORT (IPv6 as [ADDR]:PORT)`},
		{"10.1.0.1:80,w=70000", `weight "70000" is not a number 0..65535`},
		{"10.1.0.1:80,w=-1", `weight "-1" is not a number 0..65535`},
		{"10.1.0.1:80,z=1", `"z=1" is not one of w=N, x=UPPER, y=LOWER`},
		{"10.1.0.1:80,w=1,w=2", `"w=2" is not one of w=N, x=UPPER, y=LOWER (each at most once)`},
		{"10.1.0.1:80,x=abc", `threshold x="abc" is not a number 0..2147483647`},
		{"10.1.0.1:80,y=3", `lower threshold y=3 is above upper threshold x=0 (the kernel answers ERANGE)`},
	} {
		_, err := ParseDest(c.in)
		assert.EqualError(t, err, c.want, c.in)
	}
	for _, c := range []struct{ in, want string }{
		{"host.example", `"host.example" is not ADDR or ADDR:PORT (IPv6 as ADDR or [ADDR]:PORT)`},
		{"10.2.0.1>", `"" is not ADDR or ADDR:PORT (IPv6 as ADDR or [ADDR]:PORT)`},
		{"10.2.0.1:99999", `"10.2.0.1:99999" is not ADDR or ADDR:PORT (IPv6 as ADDR or [ADDR]:PORT)`},
	} {
		_, err := ParseFlow(c.in)
		assert.EqualError(t, err, c.want, c.in)
	}
	_, err := ParseEnding("held")
	assert.EqualError(t, err, `"held" is not one of active, inactive, none`)

	d, _ := ParseDest("10.1.0.1:80")
	for _, c := range []struct {
		cfg  Config
		want string
	}{
		{Config{Scheduler: "fifo"}, `--scheduler "fifo": scheduler not found (one of rr, wrr, lc, wlc, lblc, lblcr, dh, sh, sed, nq, fo, ovf, mh, twos)`},
		{Config{Scheduler: "wlc", Flags: "sh-port"}, "--sched-flags \"sh-port\": incompatible scheduler flag `sh-port'"},
		{Config{Scheduler: "mh", Flags: "mh-spin"}, "--sched-flags \"mh-spin\": invalid scheduler flag `mh-spin'"},
		{Config{Scheduler: "rr", Picks: -1}, "--picks -1: must not be negative"},
		{Config{Scheduler: "rr", Dests: []DestSpec{d, d}}, "--dest 10.1.0.1:80: given twice (the kernel answers EEXIST)"},
	} {
		_, err := Run(c.cfg)
		assert.EqualError(t, err, c.want)
	}
}
