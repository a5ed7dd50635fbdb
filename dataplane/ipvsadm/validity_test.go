package ipvsadm

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

// The validity matrix of spec §8.2, written out again from the spec (not
// from the table the code uses), checked command by option.

type matrixOption struct {
	name string // optnames[]
	args string // a valid use
}

var matrixOptions = []matrixOption{
	{"numeric", "-n"}, {"connection", "-c"}, {"service-address", "-t 10.0.0.1:80"},
	{"scheduler", "-s rr"}, {"persistent", "-p"}, {"netmask", "-M 255.255.255.0"},
	{"real-server", "-r 10.1.0.1:80"}, {"forwarding-method", "-m"}, {"weight", "-w 2"},
	{"u-threshold", "-x 5"}, {"l-threshold", "-y 1"}, {"mcast-interface", "--mcast-interface eth1"},
	{"timeout", "--timeout"}, {"daemon", "--daemon"}, {"stats", "--stats"}, {"rate", "--rate"},
	{"thresholds", "--thresholds"}, {"persistent-conn", "--persistent-conn"}, {"nosort", "--nosort"},
	{"syncid", "--syncid 3"}, {"exact", "--exact"}, {"ops", "-o"}, {"pe", "--pe sip"},
	{"sched-flags", "-b flag-1"}, {"mcast-group", "--mcast-group 224.0.0.9"},
	{"mcast-port", "--mcast-port 9000"}, {"mcast-ttl", "--mcast-ttl 2"}, {"sync-maxlen", "--sync-maxlen 1000"},
	{"tun-info", "--tun-info"}, {"tun-type", "--tun-type ipip"}, {"tun-port", "--tun-port 6080"},
	{"tun-nocsum", "--tun-nocsum"}, {"tun-csum", "--tun-csum"}, {"tun-remcsum", "--tun-remcsum"},
}

var tunnelOpts = []string{"tun-type", "tun-port", "tun-nocsum", "tun-csum", "tun-remcsum"}

var matrixCommands = []struct {
	cmd, name string
	required  []string
	optional  []string
}{
	{"-A", "add-service", []string{"service-address"}, []string{"scheduler", "persistent", "netmask", "pe", "sched-flags", "ops"}},
	{"-E", "edit-service", []string{"service-address"}, []string{"scheduler", "persistent", "netmask", "pe", "sched-flags", "ops"}},
	{"-D", "delete-service", []string{"service-address"}, nil},
	{"-C", "flush", nil, nil},
	{"-R", "restore", nil, nil},
	{"--set 1 2 3", "set", nil, nil},
	{"-a", "add-server", []string{"service-address", "real-server"}, append([]string{"forwarding-method", "weight", "u-threshold", "l-threshold"}, tunnelOpts...)},
	{"-e", "edit-server", []string{"service-address", "real-server"}, append([]string{"forwarding-method", "weight", "u-threshold", "l-threshold"}, tunnelOpts...)},
	{"-d", "delete-server", []string{"service-address", "real-server"}, nil},
	{"-L", "list", nil, []string{"numeric", "stats", "rate", "thresholds", "persistent-conn", "nosort", "exact", "tun-info", "syncid",
		"connection", "service-address", "timeout", "daemon"}},
	{"-S", "save", nil, []string{"numeric"}},
	{"-Z", "zero", nil, []string{"service-address"}},
	{"--start-daemon master", "start-daemon", nil, []string{"mcast-interface", "syncid", "mcast-group", "mcast-port", "mcast-ttl", "sync-maxlen"}},
	{"--stop-daemon master", "stop-daemon", nil, []string{"syncid"}},
}

func argsOf(names ...string) string {
	var out []string
	for _, n := range names {
		i := slices.IndexFunc(matrixOptions, func(o matrixOption) bool { return o.name == n })
		out = append(out, matrixOptions[i].args)
	}
	return strings.Join(out, " ")
}

func TestValidityMatrix(t *testing.T) {
	for _, c := range matrixCommands {
		for _, o := range matrixOptions {
			if slices.Contains(c.required, o.name) {
				continue
			}
			line := strings.Join([]string{c.cmd, argsOf(c.required...), o.args}, " ")
			if slices.Contains(tunnelOpts, o.name) && (c.name == "add-server" || c.name == "edit-server") {
				line += " -i" // tunnel options need the tunnel method
			}
			t.Run(c.name+"/"+o.name, func(t *testing.T) {
				var out, errb bytes.Buffer
				status := Run(newFakeDirector(), strings.Fields(line), strings.NewReader(""), &out, &errb)
				illegal := fmt.Sprintf("Illegal '%s' option with the '%s' command\n", o.name, c.name)
				if slices.Contains(c.optional, o.name) {
					assert.NotEqual(t, illegal, errb.String(), line)
					return
				}
				assert.Equal(t, illegal, errb.String(), line)
				assert.Equal(t, 2, status, line)
			})
		}
		for _, req := range c.required {
			t.Run(c.name+"/without "+req, func(t *testing.T) {
				var others []string
				for _, r := range c.required {
					if r != req {
						others = append(others, r)
					}
				}
				line := c.cmd + " " + argsOf(others...)
				var out, errb bytes.Buffer
				status := Run(newFakeDirector(), strings.Fields(line), nil, &out, &errb)
				assert.Equal(t, fmt.Sprintf("You need to supply the '%s' option for the '%s' command\n", req, c.name), errb.String(), line)
				assert.Equal(t, 2, status)
			})
		}
	}
}

func TestListExclusiveOptions(t *testing.T) {
	var out, errb bytes.Buffer
	status := Run(newFakeDirector(), strings.Fields("-L -c --daemon"), nil, &out, &errb)
	assert.Equal(t, "The option 'daemon' conflicts with the 'connection' option in the 'list' command\n", errb.String())
	assert.Equal(t, 2, status)
}

func TestValidityTableShape(t *testing.T) {
	for cmd := cmdAdd; cmd <= cmdZero; cmd++ {
		assert.Len(t, validity[cmd], int(numOptions), cmdNames[cmd])
	}
}
