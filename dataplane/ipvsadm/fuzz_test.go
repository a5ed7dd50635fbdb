package ipvsadm

import (
	"bytes"
	"slices"
	"strings"
	"testing"
)

// FuzzRun drives ipvsadm's whole command line (words separated by
// newlines, so a word may hold blanks) and a -R script against a kernel
// that already has a service, destinations, connections and a daemon.
// Whatever the input, Run returns one of ipvsadm's exit statuses.
func FuzzRun(f *testing.F) {
	for _, s := range []struct{ args, stdin string }{
		{"-A\n-t\n10.0.0.1:80\n-s\nrr", ""},
		{"-a\n-t\n[fd00::1]:443\n-r\n[fd00::2]:443\n-i\n--tun-type\ngue\n--tun-port\n6080\n--tun-csum", ""},
		{"-Ln\n--stats\n--exact", ""},
		{"-L\n-n\n-c\n--persistent-conn", ""},
		{"-R", "-A -t 10.0.0.2:80 -s wlc\n-a -t 10.0.0.2:80 -r 10.1.0.1 -m -w 3\n-S -n\n"},
		{"-A\n-f\n5\n-6\n-p\n-M\n64\n-b\nsh-port,!#:+\n-s\nsh", ""},
		{"--set\n1\n2\n3\n--\n-x", ""},
		{"-e\n-t\n1234:http\n-r\n0x0a.1:80\n-x\n10\n-y\n20", ""},
		{"--start-daemon=backup\n--mcast-group\nff02::1\n--sync-maxlen\n1000", ""},
		{"-s=rr\n-A", ""},
		{"-A\n-t\n10.0.0.9:80\n-b\n,", ""},
		{"-L\n--daemon\n--timeout", ""},
	} {
		f.Add(s.args, s.stdin)
	}
	f.Fuzz(func(t *testing.T, args, stdin string) {
		d := newFakeDirector()
		setup := []string{
			"-A -t 10.0.0.1:80 -s wlc", "-a -t 10.0.0.1:80 -r 10.1.0.1:80 -m",
			"-a -t 10.0.0.1:80 -r 200.1.0.1 -i --tun-type gue --tun-port 9", "-A -f 7 -6 -s sh -b sh-port",
			"--start-daemon master",
		}
		for _, l := range setup {
			if Run(d, strings.Fields(l), nil, &bytes.Buffer{}, &bytes.Buffer{}) != 0 {
				t.Fatalf("setup %q failed", l)
			}
		}
		d.conns = []ConnEntry{{Protocol: ProtoIP, State: "NONE", PEName: "sip", PEData: "x y", Expires: -1}}
		var out, errb bytes.Buffer
		var words []string
		if args != "" {
			words = strings.Split(args, "\n")
		}
		status := Run(d, words, strings.NewReader(stdin), &out, &errb)
		if !slices.Contains([]int{0, 1, 2, 139, 255}, status) {
			t.Fatalf("Run(%q) = %d", words, status)
		}
	})
}
