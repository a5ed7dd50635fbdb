package replay

import (
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/lvslab/lvslab/scheduler"
)

// script100 is a scenario of n closed NAT connections over 100 real
// servers, 50 000 per client address.
func script100(sched string, n int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "ipvsadm -A -t 10.0.0.100:80 -s %s\n", sched)
	for i := range 100 {
		fmt.Fprintf(&b, "ipvsadm -a -t 10.0.0.100:80 -r 10.1.%d.%d:80 -m -w %d\n", i/250, i%250+1, 1+i%4)
	}
	for c := 0; n > 0; c++ {
		k := min(n, 50_000)
		fmt.Fprintf(&b, "conn 10.%d.%d.%d %d\n", 2+c>>16, c>>8&255, c&255, k)
		n -= k
	}
	return b.String()
}

// BenchmarkScript replays a whole script, driver and output included; one
// op is one connection.
func BenchmarkScript(b *testing.B) {
	for _, sched := range []string{"wlc", "mh"} {
		b.Run(sched, func(b *testing.B) {
			sc, err := Parse("bench.scn", script100(sched, b.N))
			if err != nil {
				b.Fatal(err)
			}
			sc.StatsWait = 0
			b.ResetTimer()
			if err := Run(sc, Options{Profile: scheduler.ProfileCurrent}, io.Discard); err != nil {
				b.Fatal(err)
			}
		})
	}
}
