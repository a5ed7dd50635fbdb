package ipvsadm

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestLargenum(t *testing.T) {
	for _, c := range []struct {
		v    uint64
		f    format
		want string
	}{
		{0, 0, "        0"},
		{99999999, 0, " 99999999"},
		{100000000, 0, "  100000K"},
		{999999999, 0, "  999999K"},
		{1000000000, 0, "    1000M"},
		{1234567890, 0, "    1234M"},
		{99999999999, 0, "   99999M"},
		{100000000000, 0, "     100G"},
		{99999999999999, 0, "   99999G"},
		{100000000000000, 0, "     100T"},
		{18446744073709551615, 0, "18446744T"},
		{12345678, fmtExact, " 12345678"},
		{123456789, fmtExact, " 123456789"},
		{1234567890, fmtExact, " 1234567890"},
	} {
		assert.Equal(t, c.want, largenum(c.v, c.f), "%d", c.v)
	}
}

func TestInetAton(t *testing.T) {
	for _, c := range []struct {
		in   string
		want string // "" means refused
	}{
		{"10.0.0.1", "10.0.0.1"},
		{"1234", "0.0.4.210"}, // observed: -t 1234:80 lists as 0.0.4.210:80
		{"10.7", "10.0.0.7"},
		{"10.1.7", "10.1.0.7"},
		{"0x0a.0.0.9", "10.0.0.9"},
		{"010.0.0.1", "8.0.0.1"},
		{"1.2.3.4 trailing", "1.2.3.4"},
		{"255.255.255.255", "255.255.255.255"},
		{"256.0.0.1", ""},
		{"1.2.3.4.5", ""},
		{"1.2.3.", ""},
		{"08.0.0.1", ""},
		{"4294967296", ""},
		{"a.b.c.d", ""},
		{"", ""},
		{"1.2.65536", ""},
		{"1.2.65535", "1.2.255.255"},
	} {
		a, ok := inetAton(c.in)
		if c.want == "" {
			assert.False(t, ok, c.in)
			continue
		}
		if assert.True(t, ok, c.in) {
			assert.Equal(t, c.want, a.String(), c.in)
		}
	}
}

func TestInetNtop(t *testing.T) {
	for in, want := range map[string]string{
		"::1":                  "::1",
		"::":                   "::",
		"fd00::9:80":           "fd00::9:80",
		"2001:db8:0:0:1:0:0:1": "2001:db8::1:0:0:1",
		"2001:0:1:0:1:0:1:0":   "2001:0:1:0:1:0:1:0",
		"::ffff:1.2.3.4":       "::ffff:1.2.3.4",
		"::2:3":                "::0.2.0.3", // glibc prints an IPv4-compatible tail
		"::1.2.3.4":            "::1.2.3.4",
		"1::":                  "1::",
		"fe80::1:0:0:0":        "fe80::1:0:0:0", // a tie: the first run wins
	} {
		assert.Equal(t, want, inetNtop(netip.MustParseAddr(in)), in)
	}
}

func TestStringToNumber(t *testing.T) {
	for _, c := range []struct {
		in string
		v  int64
		ok bool
	}{
		{"5", 5, true}, {" +7", 7, true}, {"-0", 0, true}, {"65535", 65535, true},
		{"65536", 0, false}, {"5x", 0, false}, {"", 0, false}, {" ", 0, false},
		{"0x10", 0, false}, {"99999999999999999999", 0, false}, {"-1", 0, false},
	} {
		v, ok := stringToNumber(c.in, 0, 65535)
		assert.Equal(t, c.ok, ok, "%q", c.in)
		assert.Equal(t, c.v, v, "%q", c.in)
	}
}

func TestServiceNames(t *testing.T) {
	p, ok := serviceToPort("http", ProtoTCP)
	assert.True(t, ok)
	assert.Equal(t, uint16(80), p)
	p, ok = serviceToPort("www", ProtoTCP) // an alias
	assert.True(t, ok)
	assert.Equal(t, uint16(80), p)
	_, ok = serviceToPort("http", ProtoIP)
	assert.False(t, ok, "fwmark services have no port names")
	n, ok := portToService(53, ProtoUDP)
	assert.True(t, ok)
	assert.Equal(t, "domain", n)
}
