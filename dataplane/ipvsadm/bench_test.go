package ipvsadm

import (
	"fmt"
	"io"
	"net/netip"
	"strings"
	"testing"
)

// bigDirector holds 1000 services of 16 destinations each.
func bigDirector(b *testing.B) *fakeDirector {
	d := newFakeDirector()
	for i := 0; i < 1000; i++ {
		vip := netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)})
		svc := ServiceEntry{ServiceSpec: ServiceSpec{Key: ServiceKey{AF: FamilyIPv4, Protocol: ProtoTCP, Addr: vip, Port: 80}, Scheduler: "wlc"}}
		for j := 0; j < 16; j++ {
			rip := netip.AddrFrom4([4]byte{10, 1, byte(j), byte(i)})
			svc.Dests = append(svc.Dests, DestEntry{DestSpec: DestSpec{Addr: rip, Port: 80, Weight: 1}, ActiveConns: uint32(i), InactConns: uint32(j)})
		}
		d.services = append(d.services, &svc)
	}
	return d
}

func BenchmarkListing(b *testing.B) {
	d := bigDirector(b)
	for _, args := range []string{"-L -n", "-L -n --stats", "-S -n"} {
		b.Run(args, func(b *testing.B) {
			a := strings.Fields(args)
			for b.Loop() {
				if Run(d, a, nil, io.Discard, io.Discard) != 0 {
					b.Fatal("listing failed")
				}
			}
		})
	}
}

func BenchmarkParseAddDest(b *testing.B) {
	d := newFakeDirector()
	Run(d, strings.Fields("-A -t 10.0.0.1:80 -s wlc"), nil, io.Discard, io.Discard)
	args := strings.Fields("-a -t 10.0.0.1:80 -r 10.1.0.1:80 -m -w 3 -x 100 -y 10")
	for b.Loop() {
		d.services[0].Dests = d.services[0].Dests[:0]
		if s := Run(d, args, nil, io.Discard, io.Discard); s != 0 {
			b.Fatal(fmt.Sprint("status ", s))
		}
	}
}
