// Package loadgen is lvslab's traffic source: open-loop (constant or Poisson
// arrivals, latency measured from the intended send time, so a stalled
// server shows in the tail instead of hiding in a slower send rate) and
// closed-loop (fixed concurrency) clients speaking http, tcp or udp, with a
// new connection per request by default (LVS schedules connections), many
// client source addresses, and per-real-server attribution from what each
// response says about who served it.
//
// The built-in real servers live in loadgen/realserver; what both sides
// agree on is in loadgen/wire. Results are reports/metrics values, which
// merge across workers and client nodes. loadgen measures; it never decides
// whether a run passed.
package loadgen

import (
	"fmt"
	"math"
	"net/netip"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/lvslab/lvslab/loadgen/wire"
	"github.com/lvslab/lvslab/reports/metrics"
)

// Arrival is the open-loop arrival process.
type Arrival uint8

const (
	Constant Arrival = iota // evenly spaced sends
	Poisson                 // exponential gaps with the same mean
)

// Config describes one load phase on one client node.
type Config struct {
	Target netip.AddrPort
	Kind   wire.Kind

	// Rate > 0 runs an open loop of Rate requests per second, with at most
	// Concurrency requests in flight (default DefaultMaxInFlight; the rest
	// wait, and their wait counts in their latency). Rate == 0 runs a closed
	// loop of Concurrency clients, each sending as soon as its previous
	// response arrived.
	Rate        float64
	Arrival     Arrival
	Concurrency int
	Duration    time.Duration

	// KeepAlive reuses connections; by default every request opens a new one.
	KeepAlive bool
	// Sources are client addresses bound in turn, one per connection; empty
	// lets the kernel choose.
	Sources      []netip.Addr
	RequestBytes int           // tcp, udp: the whole request (at least wire.RequestLen); http: a POST body (0: GET)
	Timeout      time.Duration // per request, from its intended send time (default DefaultTimeout)

	Path         string // http request path (default "/")
	Host         string // http Host header (default the target)
	ServerHeader string // http response header naming the real server (default wire.ServerHeader)

	Workers  int           // event loops, one OS thread each (default GOMAXPROCS)
	Seed     uint64        // Poisson arrivals
	Interval time.Duration // time series step (default one second)

	// Progress, when set, receives each interval of the time series as soon
	// as its time has passed, merged over the workers, in order, from one
	// goroutine (a slow Progress stalls the workers). It is the live view a
	// runner streams; the Result returned at the end holds the same data.
	Progress func(i int, iv metrics.Interval)
}

const (
	DefaultMaxInFlight = 10000
	DefaultTimeout     = 5 * time.Second
	maxSources         = 1 << 16
)

// OpenLoop reports whether the phase runs at a fixed rate.
func (c *Config) OpenLoop() bool { return c.Rate > 0 }

func (c *Config) setDefaults() {
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	if c.OpenLoop() && c.Concurrency <= 0 {
		c.Concurrency = DefaultMaxInFlight
	}
	if c.Workers <= 0 {
		c.Workers = runtime.GOMAXPROCS(0)
	}
	// A worker without a share of the work would only spin.
	c.Workers = min(c.Workers, c.Concurrency)
	if c.OpenLoop() {
		c.Workers = max(1, min(c.Workers, int(c.Rate*c.Duration.Seconds())))
	}
	if c.Interval <= 0 {
		c.Interval = metrics.DefaultInterval
	}
	if c.Path == "" {
		c.Path = "/"
	}
	if c.Host == "" {
		c.Host = c.Target.String()
	}
	if c.ServerHeader == "" {
		c.ServerHeader = wire.ServerHeader
	}
	if c.Kind != wire.HTTP {
		c.RequestBytes = max(c.RequestBytes, wire.RequestLen)
	}
}

// ConfigError is a bad Config field, named as the flag (and the scenario
// key) that sets it.
type ConfigError struct {
	Field string
	Err   error
}

func (e *ConfigError) Error() string { return e.Field + ": " + e.Err.Error() }
func (e *ConfigError) Unwrap() error { return e.Err }

func bad(field, format string, args ...any) error {
	return &ConfigError{Field: field, Err: fmt.Errorf(format, args...)}
}

// Check reports the first problem with c as a *ConfigError.
func (c *Config) Check() error {
	switch {
	case !c.Target.IsValid() || c.Target.Port() == 0:
		return bad("target", "want ADDR:PORT with a non-zero port")
	case c.Kind > wire.UDP:
		return bad("kind", "unknown kind %v", c.Kind)
	case c.Rate < 0 || math.IsNaN(c.Rate) || math.IsInf(c.Rate, 0):
		return bad("rate", "%v is not a positive rate", c.Rate)
	case c.Rate == 0 && c.Concurrency <= 0:
		return bad("rate", "give a rate (open loop) or a concurrency (closed loop)")
	case c.Concurrency < 0:
		return bad("concurrency", "%d is negative", c.Concurrency)
	case c.Duration <= 0:
		return bad("duration", "must be positive")
	case c.RequestBytes < 0:
		return bad("request-bytes", "%d is negative", c.RequestBytes)
	case c.Kind == wire.UDP && c.RequestBytes > 65507:
		return bad("request-bytes", "%d does not fit a udp datagram (max 65507)", c.RequestBytes)
	case len(c.Sources) > maxSources:
		return bad("source-range", "%d addresses, at most %d", len(c.Sources), maxSources)
	}
	for _, a := range c.Sources {
		if a.Is4() != c.Target.Addr().Is4() {
			return bad("source-range", "%v is not of the target's address family", a)
		}
	}
	return nil
}

// ParseRate reads "2000/s", "2000", "120/m" or "5/ms" as requests per second.
func ParseRate(s string) (float64, error) {
	num, unit, _ := strings.Cut(s, "/")
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || v <= 0 {
		return 0, fmt.Errorf("rate %q: want a positive number per time unit, such as 2000/s", s)
	}
	switch unit {
	case "", "s":
	case "ms":
		v *= 1000
	case "m", "min":
		v /= 60
	default:
		return 0, fmt.Errorf("rate %q: unknown unit %q (want s, ms or m)", s, unit)
	}
	return v, nil
}

// ParseRange reads "A-B" (or a single address) as the addresses from A to B inclusive.
func ParseRange(s string) ([]netip.Addr, error) {
	lo, hi, isRange := strings.Cut(s, "-")
	a, err := netip.ParseAddr(strings.TrimSpace(lo))
	if err != nil {
		return nil, fmt.Errorf("address range %q: %w", s, err)
	}
	b := a
	if isRange {
		if b, err = netip.ParseAddr(strings.TrimSpace(hi)); err != nil {
			return nil, fmt.Errorf("address range %q: %w", s, err)
		}
	}
	if a.Is4() != b.Is4() || b.Less(a) {
		return nil, fmt.Errorf("address range %q: want A-B with A <= B of one family", s)
	}
	var out []netip.Addr
	for x := a; ; x = x.Next() {
		if len(out) == maxSources {
			return nil, fmt.Errorf("address range %q: more than %d addresses", s, maxSources)
		}
		out = append(out, x)
		if x == b {
			return out, nil
		}
	}
}
