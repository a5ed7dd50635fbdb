package realserver

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Mode is a failure a real server can be switched into at run time.
type Mode uint8

const (
	Healthy     Mode = iota // serve normally
	Hang                    // accept and read requests, never answer (until the mode changes)
	Slow                    // answer after an extra Delay
	Reset                   // answer every request with a TCP reset
	ErrorStatus             // answer at once with Status (HTTP, and the tcp/udp prefix)
	Refuse                  // close the listening socket: new connections are refused
)

var modeNames = [...]string{Healthy: "none", Hang: "hang", Slow: "slow", Reset: "reset", ErrorStatus: "error", Refuse: "refuse"}

func (m Mode) String() string {
	if int(m) < len(modeNames) {
		return modeNames[m]
	}
	return fmt.Sprintf("mode(%d)", uint8(m))
}

// Fault is a failure mode with its parameter.
type Fault struct {
	Mode   Mode
	Delay  time.Duration // Slow
	Status int           // ErrorStatus
}

// DefaultErrorStatus is the status of an ErrorStatus fault that names none.
const DefaultErrorStatus = 503

// ParseFault reads "none", "hang", "slow:200ms", "reset", "error" or
// "error:500", "refuse".
func ParseFault(s string) (Fault, error) {
	name, arg, hasArg := strings.Cut(s, ":")
	for m, n := range modeNames {
		if n != name {
			continue
		}
		f := Fault{Mode: Mode(m)}
		switch {
		case f.Mode == Slow:
			d, err := time.ParseDuration(arg)
			if err != nil || d <= 0 {
				return Fault{}, fmt.Errorf("fault %q: want slow:DURATION, such as slow:200ms", s)
			}
			f.Delay = d
		case f.Mode == ErrorStatus:
			f.Status = DefaultErrorStatus
			if hasArg {
				code, err := strconv.Atoi(arg)
				if err != nil || code < 400 || code > 599 {
					return Fault{}, fmt.Errorf("fault %q: want error:STATUS with a status from 400 to 599", s)
				}
				f.Status = code
			}
		case hasArg:
			return Fault{}, fmt.Errorf("fault %q: %s takes no argument", s, name)
		}
		return f, nil
	}
	return Fault{}, fmt.Errorf("unknown fault %q (want none, hang, slow:D, reset, error[:STATUS] or refuse)", s)
}

func (f Fault) String() string {
	switch f.Mode {
	case Slow:
		return "slow:" + f.Delay.String()
	case ErrorStatus:
		return "error:" + strconv.Itoa(f.Status)
	}
	return f.Mode.String()
}
