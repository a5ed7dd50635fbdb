package ipvsadm

import (
	"bufio"
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestReadConfigLine(t *testing.T) {
	for _, c := range []struct {
		name, in string
		want     [][]string
	}{
		{"words split on blanks, ipvsadm dropped", "ipvsadm -A\t-t  1.2.3.4:80\r\n-C\n", [][]string{{"-A", "-t", "1.2.3.4:80"}, {"-C"}}},
		{"empty and ipvsadm-only lines are empty", "\n  \nipvsadm\n-C\n", [][]string{{}, {}, {}, {"-C"}}},
		{"a # is just a word", "-C # comment\n", [][]string{{"-C", "#", "comment"}}},
		{"last line without newline", "-C", [][]string{{"-C"}}},
		{"last line ending in one blank", "-C ", [][]string{{"-C"}}},
		{"last line ending in two blanks is lost", "-L\n-C \t", [][]string{{"-L"}}},
		{"blank-only tail", "-C\n  ", [][]string{{"-C"}}},
		{"a NUL ends a word", "-C\x00junk\n", [][]string{{"-C"}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			in := bufio.NewReader(strings.NewReader(c.in))
			var got [][]string
			for {
				w, ok := readConfigLine(in)
				if !ok {
					break
				}
				if w == nil {
					w = []string{}
				}
				got = append(got, w)
			}
			assert.Equal(t, c.want, got)
		})
	}
}

func TestRestore(t *testing.T) {
	for _, c := range []struct {
		name, script string
		status       int
		stderr       string
		services     []string
	}{
		{"kernel errors are reported and the next line runs; the last line's status counts",
			"-A -t 10.0.0.1:80 -s rr\n-A -t 10.0.0.1:80\n-A -t 10.0.0.2:80 -s rr\n", 0,
			"Service already exists\n", []string{"TCP  10.0.0.2:80", "TCP  10.0.0.1:80"}},
		{"a failing last line gives 255",
			"-A -t 10.0.0.1:80 -s rr\n-a -t 10.0.0.9:80 -r 10.1.0.1\n", 255, "Service not defined\n", []string{"TCP  10.0.0.1:80"}},
		{"an option error ends the restore with 2",
			"-A -t 10.0.0.1:80 -s rr\n-A -t x\n-A -t 10.0.0.2:80\n", 2,
			"illegal virtual server address[:port] specified\n", []string{"TCP  10.0.0.1:80"}},
		{"a popt error is a -1 for that line only",
			"-L --foo\n-A -t 10.0.0.1:80 -s rr\n", 0, "--foo: unknown option\n", []string{"TCP  10.0.0.1:80"}},
		{"-R inside a restore stops it",
			"-A -t 10.0.0.1:80 -s rr\n-R\n-A -t 10.0.0.2:80\n", 255,
			"Try `ipvsadm -h' or 'ipvsadm --help' for more information.\n", []string{"TCP  10.0.0.1:80"}},
		{"listing a missing service exits with 1",
			"-L -n -t 10.0.0.9:80\n-A -t 10.0.0.1:80 -s rr\n", 1, "No such service\n", nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := newFakeDirector()
			var out, errb bytes.Buffer
			status := Run(d, []string{"-R"}, strings.NewReader(c.script), &out, &errb)
			assert.Equal(t, c.status, status)
			assert.Equal(t, c.stderr, errb.String())
			var got []string
			for _, s := range d.services {
				got = append(got, serviceName(s, fmtNumeric))
			}
			assert.Equal(t, c.services, got)
		})
	}
}

func TestKernelErrorWordingDependsOnTheCall(t *testing.T) {
	d := newFakeDirector()
	require.Equal(t, 0, Run(d, strings.Fields("-A -t 10.0.0.1:80 -s rr"), nil, &bytes.Buffer{}, &bytes.Buffer{}))
	for _, c := range []struct{ args, msg string }{
		{"-A -t 10.0.0.1:80", "Service already exists\n"},
		{"-E -t 10.0.0.2:80", "No such service\n"},
		{"-a -t 10.0.0.2:80 -r 10.1.0.1", "Service not defined\n"},
		{"-d -t 10.0.0.1:80 -r 10.1.0.1", "No such destination\n"},
		{"-a -t 10.0.0.1:80 -r 10.1.0.1 -y 3", "Numerical result out of range\n"},
		{"-a -t 10.0.0.1:80 -r 224.0.0.1 -m", "Invalid operation.  Possibly wrong module version, address not unicast, ...\n"},
		{"-Z -t 10.0.0.2:80", "No such service\n"},
		{"--stop-daemon backup", "No daemon is running\n"},
	} {
		var errb bytes.Buffer
		status := Run(d, strings.Fields(c.args), nil, &bytes.Buffer{}, &errb)
		assert.Equal(t, c.msg, errb.String(), c.args)
		assert.Equal(t, 255, status, c.args)
	}
}

func TestNamesWithoutNumeric(t *testing.T) {
	d := newFakeDirector()
	for _, l := range []string{
		"-A -t 10.0.0.1:http -s rr", "-a -t 10.0.0.1:www -r 10.1.0.1 -g",
		"-A -u 10.0.0.1:domain -s rr", "-a -u 10.0.0.1:53 -r 10.1.0.1:53 -m",
		"-A -f 3 -s rr", "-a -f 3 -r 10.1.0.2:80 -m", "-A -t 10.0.0.1:4321 -s rr",
	} {
		var errb bytes.Buffer
		require.Equal(t, 0, Run(d, strings.Fields(l), nil, &bytes.Buffer{}, &errb), l+": "+errb.String())
	}
	assert.Equal(t, `IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
TCP  10.0.0.1:http rr
  -> 10.1.0.1:http                Route   1      0          0         
TCP  10.0.0.1:4321 rr
UDP  10.0.0.1:domain rr
  -> 10.1.0.1:domain              Masq    1      0          0         
FWM  3 rr
  -> 10.1.0.2:80                  Masq    1      0          0         
`, output(t, d, ""))
	assert.Equal(t, `-A -t 10.0.0.1:http -s rr
-a -t 10.0.0.1:http -r 10.1.0.1:http -g -w 1
-A -t 10.0.0.1:4321 -s rr
-A -u 10.0.0.1:domain -s rr
-a -u 10.0.0.1:domain -r 10.1.0.1:domain -m -w 1
-A -f 3 -s rr
-a -f 3 -r 10.1.0.2:80 -m -w 1
`, output(t, d, "-S"))
}

func TestHelpAndVersion(t *testing.T) {
	want := golden(t, "../usage.golden")
	assert.Equal(t, want, output(t, newFakeDirector(), "-h"))
	assert.Equal(t, want, output(t, newFakeDirector(), "--help"))
	assert.Equal(t, versionLine, output(t, newFakeDirector(), "-v"))
}
