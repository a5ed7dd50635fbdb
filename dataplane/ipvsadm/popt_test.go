package ipvsadm

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestPoptGrammar(t *testing.T) {
	tryHelp := "Try `ipvsadm -h' or 'ipvsadm --help' for more information.\n"
	for _, c := range []struct {
		name   string
		args   []string
		stderr string
		status int
	}{
		{"the command must come first", []string{"-n", "-L"}, tryHelp, 255},
		{"a second command is an invalid option", []string{"-A", "-L"}, "invalid option `-L'\n", 2},
		{"the bad option is the word it came in", []string{"-AL"}, "invalid option `-AL'\n", 2},
		{"unknown long option", []string{"-L", "--foo"}, "--foo: unknown option\n", 255},
		{"unknown short option", []string{"-L", "-Q"}, "-Q: unknown option\n", 255},
		{"missing argument", []string{"-L", "-t"}, "-t: missing argument\n", 255},
		{"a flag takes no --name=value", []string{"-L", "--stats=1"}, "--stats=1: option does not take an argument\n", 255},
		{"a flag takes no =value in a bundle", []string{"-L", "-n=x"}, "-n=x: option does not take an argument\n", 255},
		{"as first word it is a usage error", []string{"--list=foo"}, tryHelp, 255},
		{"bundled flags", []string{"-Lnc"}, "", 0},
		{"bundled argument after =", []string{"-L", "-t=10.0.0.1:80"}, "No such service\n", 1},
		{"argument in the same word", []string{"-Lt10.0.0.1:80"}, "No such service\n", 1},
		{"-- ends the options", []string{"-L", "--", "-n"}, "unexpected argument -n\n", 2},
		{"a lone - is a word", []string{"-L", "-"}, "unexpected argument -\n", 2},
		{"!#:+ takes the next word", []string{"-L", "-t", "10.0.0.1:!#:+", "80"}, "No such service\n", 1},
		{"-p takes a following word", []string{"-A", "-t", "10.0.0.1:80", "-p", "x"}, "invalid timeout value `x' specified\n", 2},
		{"-p leaves a following option", []string{"-A", "-t", "10.0.0.1:0", "-p", "-s", "rr"}, "", 0},
		{"-p takes an empty word", []string{"-A", "-t", "10.0.0.1:80", "-p", ""}, "invalid timeout value `' specified\n", 2},
		{"an empty word is a leftover", []string{"-L", ""}, "unexpected argument \n", 2},
		{"a NUL ends a word", []string{"-L\x00garbage", "-n"}, "", 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			status := Run(newFakeDirector(), c.args, nil, &out, &errb)
			assert.Equal(t, c.stderr, errb.String(), strings.Join(c.args, " "))
			assert.Equal(t, c.status, status)
		})
	}
}
