package realserver

import (
	"fmt"
	"math"
	"strings"
	"time"
)

// Shape is the family of a service-time distribution.
type Shape uint8

const (
	Fixed       Shape = iota // always Mean
	Uniform                  // evenly between Min and Max
	Exponential              // memoryless with mean Mean (an M/M/c server)
)

// Dist is how long a real server works on one request.
type Dist struct {
	Shape    Shape
	Mean     time.Duration // Fixed, Exponential
	Min, Max time.Duration // Uniform
}

// ParseDist reads "2ms" or "fixed:2ms", "uniform:1ms-3ms", "exp:2ms". The
// empty string is no service time.
func ParseDist(s string) (Dist, error) {
	shape, arg, found := strings.Cut(s, ":")
	if !found {
		shape, arg = "fixed", s
	}
	if arg == "" {
		if s == "" {
			return Dist{}, nil
		}
		return Dist{}, fmt.Errorf("service time %q: missing duration", s)
	}
	switch shape {
	case "fixed", "exp":
		d, err := time.ParseDuration(arg)
		if err != nil || d < 0 {
			return Dist{}, fmt.Errorf("service time %q: want a non-negative duration such as 2ms", s)
		}
		if shape == "exp" {
			return Dist{Shape: Exponential, Mean: d}, nil
		}
		return Dist{Shape: Fixed, Mean: d}, nil
	case "uniform":
		lo, hi, ok := strings.Cut(arg, "-")
		a, err1 := time.ParseDuration(lo)
		b, err2 := time.ParseDuration(hi)
		if !ok || err1 != nil || err2 != nil || a < 0 || b < a {
			return Dist{}, fmt.Errorf("service time %q: want uniform:MIN-MAX with 0 <= MIN <= MAX, such as uniform:1ms-3ms", s)
		}
		return Dist{Shape: Uniform, Min: a, Max: b}, nil
	}
	return Dist{}, fmt.Errorf("service time %q: unknown distribution %q (want fixed, uniform or exp)", s, shape)
}

func (d Dist) String() string {
	switch d.Shape {
	case Uniform:
		return fmt.Sprintf("uniform:%v-%v", d.Min, d.Max)
	case Exponential:
		return fmt.Sprintf("exp:%v", d.Mean)
	}
	return d.Mean.String()
}

// Zero reports whether every sample is zero.
func (d Dist) Zero() bool {
	return (d.Shape != Uniform && d.Mean == 0) || (d.Shape == Uniform && d.Max == 0)
}

// Sample maps a uniform number u in [0, 1) onto the distribution (inverse
// transform), so callers choose the randomness and tests choose u.
func (d Dist) Sample(u float64) time.Duration {
	switch d.Shape {
	case Uniform:
		return d.Min + time.Duration(u*float64(d.Max-d.Min))
	case Exponential:
		return time.Duration(-math.Log1p(-u) * float64(d.Mean))
	}
	return d.Mean
}
