package ipvsadm

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

func destsAt(addrPorts ...string) []DestEntry {
	var out []DestEntry
	for _, s := range addrPorts {
		ap := netip.MustParseAddrPort(s)
		out = append(out, DestEntry{DestSpec: DestSpec{Addr: ap.Addr(), Port: ap.Port()}})
	}
	return out
}

func names(ds []DestEntry) string {
	var s []string
	for _, d := range ds {
		s = append(s, d.AddrPort().String())
	}
	return strings.Join(s, " ")
}

func TestCompareWrapsAt2To31(t *testing.T) {
	d := destsAt("10.1.0.1:80", "192.168.0.1:80", "100.1.0.1:80")
	assert.Positive(t, compareDests(&d[0], &d[1]), "10.x counts as greater than 192.168.x")
	assert.Negative(t, compareDests(&d[0], &d[2]), "10.x < 100.x")
	assert.Negative(t, compareDests(&d[2], &d[1]), "100.x < 192.x: not transitive")
	v6 := destsAt("[fd00::1]:80", "[2001:db8::1]:80")
	assert.Negative(t, compareDests(&v6[0], &v6[1]), "fd00:: sorts before 2001::")
	p := destsAt("10.0.0.1:8080", "10.0.0.1:80")
	assert.Positive(t, compareDests(&p[0], &p[1]), "ports compare correctly")
}

func TestDestSortFollowsGlibcMergeSort(t *testing.T) {
	for _, c := range []struct {
		name, listOrder, want string
	}{
		{"spec §8.3: added 10.1.0.1, 200.1.0.1, 192.168.0.1:8080 (list order is newest first)",
			"192.168.0.1:8080 200.1.0.1:80 10.1.0.1:80", "192.168.0.1:8080 200.1.0.1:80 10.1.0.1:80"},
		{"numeric order when all addresses lie close",
			"10.1.0.3:80 10.1.0.1:80 10.1.0.2:80", "10.1.0.1:80 10.1.0.2:80 10.1.0.3:80"},
		{"10.x < 100.x < 192.x, listed in that order",
			"10.1.0.1:80 100.1.0.1:80 192.168.0.1:80", "10.1.0.1:80 100.1.0.1:80 192.168.0.1:80"},
		{"the same set in the reverse list order: 192.x < 10.x wins the merge",
			"192.168.0.1:80 100.1.0.1:80 10.1.0.1:80", "192.168.0.1:80 10.1.0.1:80 100.1.0.1:80"},
		{"equal addresses keep list order of ports sorted",
			"10.0.0.1:90 10.0.0.1:80 10.0.0.1:85", "10.0.0.1:80 10.0.0.1:85 10.0.0.1:90"},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := destsAt(strings.Fields(c.listOrder)...)
			mergeSort(d, compareDests)
			assert.Equal(t, c.want, names(d))
		})
	}
}

func TestMergeSortIsStableForEqualKeys(t *testing.T) {
	type item struct{ key, tag int }
	s := []item{{2, 0}, {1, 1}, {2, 2}, {1, 3}, {2, 4}}
	mergeSort(s, func(a, b *item) int32 { return int32(a.key - b.key) })
	assert.Equal(t, []item{{1, 1}, {1, 3}, {2, 0}, {2, 2}, {2, 4}}, s)
}

func TestServiceSortOrder(t *testing.T) {
	svc := func(k ServiceKey) ServiceEntry { return ServiceEntry{ServiceSpec: ServiceSpec{Key: k}} }
	a := netip.MustParseAddr
	list := []ServiceEntry{
		svc(ServiceKey{AF: FamilyIPv4, FWMark: 5}),
		svc(ServiceKey{AF: FamilyIPv6, Protocol: ProtoTCP, Addr: a("fd00::100"), Port: 443}),
		svc(ServiceKey{AF: FamilyIPv4, Protocol: ProtoUDP, Addr: a("10.0.0.100"), Port: 53}),
		svc(ServiceKey{AF: FamilyIPv4, FWMark: 0xffffffff}),
		svc(ServiceKey{AF: FamilyIPv4, Protocol: ProtoTCP, Addr: a("10.0.0.100"), Port: 80}),
		svc(ServiceKey{AF: FamilyIPv6, FWMark: 5}),
		svc(ServiceKey{AF: FamilyIPv4, Protocol: ProtoSCTP, Addr: a("10.0.0.1"), Port: 9}),
	}
	mergeSort(list, compareServices)
	var got []string
	for i := range list {
		got = append(got, serviceName(&list[i], fmtNumeric))
	}
	assert.Equal(t, []string{
		"FWM  -1", // mark 4294967295 - 0 wraps to -1: before everything (observed)
		"TCP  10.0.0.100:80", "UDP  10.0.0.100:53", "SCTP 10.0.0.1:9",
		"TCP  [fd00::100]:443",
		"FWM  5", "FWM  5 IPv6",
	}, got)
}
