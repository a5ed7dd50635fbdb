package xmit

import (
	"net/netip"
	"testing"

	"github.com/gopacket/gopacket/layers"
	"github.com/lvslab/lvslab/dataplane/header"
	ht "github.com/lvslab/lvslab/dataplane/header/headertest"
	"github.com/lvslab/lvslab/dataplane/parse"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var (
	cip  = netip.MustParseAddr("192.168.1.10")
	vip  = netip.MustParseAddr("192.168.1.110")
	rip  = netip.MustParseAddr("10.0.0.2")
	dip  = netip.MustParseAddr("10.0.0.1")
	cip6 = netip.MustParseAddr("2001:db8:1::10")
	vip6 = netip.MustParseAddr("2001:db8:1::110")
	rip6 = netip.MustParseAddr("2001:db8:2::2")
)

func mustParse(t testing.TB, frame []byte, vnet header.VirtioNetHdr) *parse.Packet {
	t.Helper()
	var p parse.Packet
	r := parse.Frame(frame, vnet, &p)
	require.Equal(t, parse.OK, r, "parse: %v", r)
	return &p
}

// sameIP compares the IP packets of two frames (the link headers differ
// in padding only).
func sameIP(t *testing.T, want, got []byte) {
	t.Helper()
	var pw, pg parse.Packet
	require.Equal(t, parse.OK, parse.Frame(want, nil, &pw))
	require.Equal(t, parse.OK, parse.Frame(got, nil, &pg))
	assert.Equal(t, want[pw.L3Off:pw.L3Off+pw.Len], got[pg.L3Off:pg.L3Off+pg.Len])
}

func TestNATMatchesAFreshlyBuiltPacket(t *testing.T) {
	payload := []byte("GET / HTTP/1.0\r\n\r\n")
	tests := []struct {
		name          string
		build         func(ht.Spec) []byte
		c, v, r       netip.Addr
		cport, vp, rp uint16
	}{
		{"TCP over IPv4", ht.TCP, cip, vip, rip, 40000, 80, 8080},
		{"UDP over IPv4", ht.UDP, cip, vip, rip, 5353, 53, 5300},
		{"TCP over IPv6", ht.TCP, cip6, vip6, rip6, 40000, 443, 443},
		{"UDP over IPv6", ht.UDP, cip6, vip6, rip6, 1, 2, 3},
		{"SCTP over IPv4", func(s ht.Spec) []byte { return ht.SCTPInit(s) }, cip, vip, rip, 7, 9, 10},
	}
	for _, tt := range tests {
		t.Run(tt.name+" inbound", func(t *testing.T) {
			f := tt.build(ht.Spec{Src: tt.c, Dst: tt.v, SrcPort: tt.cport, DstPort: tt.vp, Payload: payload, TCPFlags: header.TCPFlagACK})
			p := mustParse(t, f, nil)
			NATIn(f, nil, p, tt.r, tt.rp)
			sameIP(t, tt.build(ht.Spec{Src: tt.c, Dst: tt.r, SrcPort: tt.cport, DstPort: tt.rp, Payload: payload, TCPFlags: header.TCPFlagACK}), f)
			assert.Equal(t, parse.Flow{Proto: p.Proto, Src: tt.c, Dst: tt.r, SrcPort: tt.cport, DstPort: tt.rp}, p.Flow)
		})
		t.Run(tt.name+" outbound", func(t *testing.T) {
			f := tt.build(ht.Spec{Src: tt.r, Dst: tt.c, SrcPort: tt.rp, DstPort: tt.cport, Payload: payload, TCPFlags: header.TCPFlagACK})
			p := mustParse(t, f, nil)
			NATOut(f, nil, p, tt.v, tt.vp)
			sameIP(t, tt.build(ht.Spec{Src: tt.v, Dst: tt.c, SrcPort: tt.vp, DstPort: tt.cport, Payload: payload, TCPFlags: header.TCPFlagACK}), f)
		})
	}
}

// TestNATOnChecksumPartial checks the kernel's rule for CHECKSUM_PARTIAL
// packets: the field holds the pseudo-header sum, which a port change does
// not touch and an address change adjusts without complements.
func TestNATOnChecksumPartial(t *testing.T) {
	for _, proto := range []uint8{header.ProtocolTCP, header.ProtocolUDP} {
		build := ht.TCP
		off := uint16(header.TCPChecksumOffset)
		if proto == header.ProtocolUDP {
			build, off = ht.UDP, header.UDPChecksumOffset
		}
		f := build(ht.Spec{Src: cip, Dst: vip, SrcPort: 40000, DstPort: 80, Payload: make([]byte, 100)})
		p := mustParse(t, f, nil)
		seg := f[p.L4Off : p.L3Off+p.Len]
		setField := func(v uint16) { seg[off], seg[off+1] = byte(v>>8), byte(v) }
		setField(header.PseudoHeaderChecksum(proto, cip, vip, uint32(len(seg))))
		vnet := make(header.VirtioNetHdr, header.VirtioNetHdrSize)
		vnet.SetFlags(header.VirtioNetHdrFNeedsCsum)
		vnet.SetCsumStart(uint16(p.L4Off))
		vnet.SetCsumOffset(off)
		p = mustParse(t, f, vnet)
		NATIn(f, vnet, p, rip, 8080)
		got := uint16(seg[off])<<8 | uint16(seg[off+1])
		assert.Equal(t, header.PseudoHeaderChecksum(proto, cip, rip, uint32(len(seg))), got, "protocol %d", proto)
		// Finishing the checksum as the device would gives a valid packet.
		setField(^header.Checksum(seg, 0))
		assert.Equal(t, uint16(0xffff), header.Checksum(seg, header.PseudoHeaderChecksum(proto, cip, rip, uint32(len(seg)))))
	}
}

func TestNATUDPZeroChecksumIsFilledIn(t *testing.T) {
	f := ht.UDP(ht.Spec{Src: cip, Dst: vip, SrcPort: 5353, DstPort: 53, Payload: []byte("abc")})
	p := mustParse(t, f, nil)
	header.UDP(f[p.L4Off:]).SetChecksum(0)
	NATIn(f, nil, p, rip, 53)
	u := header.UDP(f[p.L4Off : p.L3Off+p.Len])
	require.NotZero(t, u.Checksum())
	assert.Equal(t, uint16(0xffff), header.Checksum(u, header.PseudoHeaderChecksum(header.ProtocolUDP, cip, rip, uint32(len(u)))))
}

func TestNATUDPNeverSendsZero(t *testing.T) {
	// Find a rewrite whose incremental result is 0: it must go out as 0xffff.
	for port := range uint16(65535) {
		f := ht.UDP(ht.Spec{Src: cip, Dst: vip, SrcPort: 5353, DstPort: 53, Payload: []byte("abcd")})
		p := mustParse(t, f, nil)
		c := header.UDP(f[p.L4Off:]).Checksum()
		if header.UpdateChecksum(c, header.AddressDelta(vip, rip).Add(header.WordDelta(53, port))) != 0 {
			continue
		}
		NATIn(f, nil, p, rip, port)
		assert.Equal(t, uint16(0xffff), header.UDP(f[p.L4Off:]).Checksum())
		return
	}
	t.Fatal("no port gives a zero checksum")
}

func TestSCTPChecksumPartialIsFinished(t *testing.T) {
	f := ht.SCTPInit(ht.Spec{Src: cip, Dst: vip, SrcPort: 7, DstPort: 9})
	vnet := make(header.VirtioNetHdr, header.VirtioNetHdrSize)
	vnet.SetFlags(header.VirtioNetHdrFNeedsCsum)
	vnet.SetCsumStart(34)
	vnet.SetCsumOffset(header.SCTPChecksumOffset)
	p := mustParse(t, f, vnet)
	NATIn(f, vnet, p, rip, 9)
	s := header.SCTP(f[p.L4Off : p.L3Off+p.Len])
	assert.Equal(t, s.CalculateChecksum(), s.Checksum())
	assert.False(t, vnet.NeedsCsum())
}

func TestDR(t *testing.T) {
	f := ht.TCP(ht.Spec{Src: cip, Dst: vip, SrcPort: 1, DstPort: 80, TCPFlags: header.TCPFlagSYN})
	want := append([]byte(nil), f...)
	rs := header.MAC{2, 0, 0, 0, 0, 9}
	DR(f, header.MAC{2, 0, 0, 0, 0, 8}, rs)
	assert.Equal(t, rs, header.Ethernet(f).Destination())
	assert.Equal(t, want[12:], f[12:], "the IP packet is untouched")
}

func TestHopCheck(t *testing.T) {
	reply := make([]byte, 2048)
	big := make([]byte, 1472)
	tests := []struct {
		name    string
		frame   []byte
		gso     bool
		hop     Hop
		verdict Verdict
		icmp    layers.ICMPv4TypeCode
		mtu     uint16
	}{
		{"a small packet is forwarded", ht.TCP(ht.Spec{Src: cip, Dst: vip, DF: true}), false, Hop{MTU: 1500}, Forward, 0, 0},
		{"TTL 1 gets time exceeded", ht.TCP(ht.Spec{Src: cip, Dst: vip, TTL: 1}), false, Hop{MTU: 1500}, Reply, layers.CreateICMPv4TypeCode(11, 0), 0},
		{"a DF packet over the MTU gets fragmentation needed", ht.UDP(ht.Spec{Src: cip, Dst: vip, DF: true, Payload: big}), false, Hop{MTU: 1400}, Reply, layers.CreateICMPv4TypeCode(3, 4), 1400},
		{"a DF packet over the tunnel MTU gets the tunnel MTU", ht.UDP(ht.Spec{Src: cip, Dst: vip, DF: true, Payload: big}), false, Hop{MTU: 1500, Tunnel: true, PMTUDisc: true}, Reply, layers.CreateICMPv4TypeCode(3, 4), 1480},
		{"without pmtu_disc the tunnel fragments", ht.UDP(ht.Spec{Src: cip, Dst: vip, DF: true, Payload: big}), false, Hop{MTU: 1500, Tunnel: true}, Fragment, 0, 0},
		{"a packet without DF is fragmented", ht.UDP(ht.Spec{Src: cip, Dst: vip, Payload: big}), false, Hop{MTU: 1400}, Fragment, 0, 0},
		{"a GSO packet is exempt", ht.TCP(ht.Spec{Src: cip, Dst: vip, DF: true, Payload: big}), true, Hop{MTU: 1400}, Forward, 0, 0},
		{"a tunnel MTU below 68 drops", ht.TCP(ht.Spec{Src: cip, Dst: vip}), false, Hop{MTU: 80, Tunnel: true}, Drop, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var vnet header.VirtioNetHdr
			if tt.gso {
				vnet = make(header.VirtioNetHdr, header.VirtioNetHdrSize)
				vnet.SetFlags(header.VirtioNetHdrFNeedsCsum)
				vnet.SetGSOType(header.VirtioNetHdrGSOTCPv4)
				vnet.SetGSOSize(1448)
				vnet.SetCsumStart(34)
				vnet.SetCsumOffset(16)
			}
			orig := append([]byte(nil), tt.frame...)
			p := mustParse(t, tt.frame, vnet)
			v, n := tt.hop.Check(reply, tt.frame, vnet, p)
			require.Equal(t, tt.verdict, v)
			if v == Forward || v == Fragment {
				ip := header.IPv4(tt.frame[14:])
				assert.Equal(t, header.IPv4(orig[14:]).TTL()-1, ip.TTL())
				assert.True(t, ip.IsChecksumValid())
			}
			if v != Reply {
				return
			}
			pkt := ht.Decode(reply[:n])
			ip := pkt.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
			assert.Equal(t, vip.AsSlice(), []byte(ip.SrcIP.To4()), "sent from the VIP")
			assert.Equal(t, cip.AsSlice(), []byte(ip.DstIP.To4()))
			ic := pkt.Layer(layers.LayerTypeICMPv4).(*layers.ICMPv4)
			assert.Equal(t, tt.icmp, ic.TypeCode)
			assert.Equal(t, tt.mtu, ic.Seq, "next-hop MTU")
			assert.True(t, header.ICMPv4(reply[34:n]).IsChecksumValid())
			assert.LessOrEqual(t, n-14, header.ICMPv4ErrorMaxSize)
			assert.Equal(t, header.Ethernet(orig).Source(), header.Ethernet(reply).Destination(), "back to the previous hop")
			var q parse.Packet
			require.Equal(t, parse.OK, parse.Frame(reply[:n], nil, &q), "our own error parses")
			assert.Equal(t, parse.KindICMPError, q.Kind)
			assert.Equal(t, p.Flow, q.Inner)
		})
	}
}

func TestHopCheckIPv6PacketTooBig(t *testing.T) {
	f := ht.UDP(ht.Spec{Src: cip6, Dst: vip6, Payload: make([]byte, 1400)})
	p := mustParse(t, f, nil)
	reply := make([]byte, 2048)
	v, n := Hop{MTU: 1280}.Check(reply, f, nil, p)
	require.Equal(t, Reply, v)
	pkt := ht.Decode(reply[:n])
	ic := pkt.Layer(layers.LayerTypeICMPv6).(*layers.ICMPv6)
	assert.Equal(t, layers.CreateICMPv6TypeCode(2, 0), ic.TypeCode)
	assert.Equal(t, uint32(1280), header.ICMPv6(reply[54:n]).MTU())
	assert.Equal(t, 14+1280, n, "quoted up to the IPv6 minimum MTU")
	var q parse.Packet
	require.Equal(t, parse.OK, parse.Frame(reply[:n], nil, &q), "checksum verifies")
}

func TestPortUnreachable(t *testing.T) {
	f := ht.TCP(ht.Spec{Src: cip, Dst: vip, SrcPort: 40000, DstPort: 80, TCPFlags: header.TCPFlagSYN})
	p := mustParse(t, f, nil)
	out := make([]byte, ICMPErrorSize(p))
	n := PortUnreachable(out, f, p)
	require.Equal(t, len(out), n)
	var q parse.Packet
	require.Equal(t, parse.OK, parse.Frame(out, nil, &q))
	assert.Equal(t, parse.Flow{Proto: 1, Src: vip, Dst: cip}, q.Flow)
	assert.Equal(t, [2]uint8{3, 3}, [2]uint8{q.ICMPType, q.ICMPCode})
	assert.Equal(t, p.Flow, q.Inner)
	assert.Zero(t, PortUnreachable(out[:20], f, p), "a short buffer writes nothing")
}

func TestNATICMPRelay(t *testing.T) {
	for _, fam := range []struct {
		name    string
		c, v, r netip.Addr
		t, code uint8
	}{{"IPv4", cip, vip, rip, 3, 3}, {"IPv6", cip6, vip6, rip6, 1, 4}} {
		t.Run(fam.name+" inbound: the client reports a reply it could not take", func(t *testing.T) {
			reply := ht.UDP(ht.Spec{Src: fam.v, Dst: fam.c, SrcPort: 53, DstPort: 5353, Payload: []byte("answer")})
			f := ht.ICMPError(fam.c, fam.v, fam.t, fam.code, 0, reply, 0)
			p := mustParse(t, f, nil)
			NATICMPIn(f, p, fam.r, 5300)
			want := ht.ICMPError(fam.c, fam.r, fam.t, fam.code, 0, ht.UDP(ht.Spec{Src: fam.r, Dst: fam.c, SrcPort: 5300, DstPort: 5353, Payload: []byte("answer")}), 0)
			q := mustParse(t, f, nil) // checksums verify
			assert.Equal(t, parse.Flow{Proto: 17, Src: fam.r, Dst: fam.c, SrcPort: 5300, DstPort: 5353}, q.Inner)
			assert.Equal(t, p.Inner, q.Inner)
			wq := mustParse(t, want, nil)
			assert.Equal(t, want[wq.L3Off:wq.L4Off], f[q.L3Off:q.L4Off], "outer IP header")
			assert.Equal(t, want[wq.InnerL3Off:wq.InnerL4Off+4], f[q.InnerL3Off:q.InnerL4Off+4], "quoted IP header and ports")
			// The quoted UDP checksum is left as it was: the kernel does not touch it.
			assert.Equal(t, reply[p.InnerL4Off-p.InnerL3Off+14+6:][:2], f[q.InnerL4Off+6:][:2])
		})
		t.Run(fam.name+" outbound: the real server reports a request it could not take", func(t *testing.T) {
			req := ht.UDP(ht.Spec{Src: fam.c, Dst: fam.r, SrcPort: 5353, DstPort: 5300})
			f := ht.ICMPError(fam.r, fam.c, fam.t, fam.code, 0, req, 0)
			p := mustParse(t, f, nil)
			NATICMPOut(f, p, fam.v, 53)
			q := mustParse(t, f, nil)
			assert.Equal(t, fam.v, q.Src)
			assert.Equal(t, parse.Flow{Proto: 17, Src: fam.c, Dst: fam.v, SrcPort: 5353, DstPort: 53}, q.Inner)
		})
	}
}

func TestTunnelEncapsulate(t *testing.T) {
	for _, tc := range []struct {
		name     string
		tos      uint8
		df, pmtu bool
		wantTOS  uint8
		wantDF   bool
	}{
		{"DSCP and ECT(1) are copied; DF copied with pmtu_disc", 0xb9, true, true, 0xb9, true},
		{"CE becomes ECT(0)", 0x2b, false, true, 0x2a, false},
		{"without pmtu_disc DF is 0", 0, true, false, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			inner := ht.TCP(ht.Spec{Src: cip, Dst: vip, SrcPort: 1, DstPort: 80, TOS: tc.tos, DF: tc.df, Payload: []byte("x")})
			buf := make([]byte, TunnelHeadroom+len(inner))
			copy(buf[TunnelHeadroom:], inner)
			p := mustParse(t, buf[TunnelHeadroom:], nil)
			vnet := make(header.VirtioNetHdr, header.VirtioNetHdrSize)
			vnet.SetFlags(header.VirtioNetHdrFNeedsCsum)
			vnet.SetCsumStart(34)
			off, n := Tunnel{Src: dip, RIP: rip, PMTUDisc: tc.pmtu}.Encapsulate(buf, TunnelHeadroom, len(inner), vnet, p, 77)
			require.Equal(t, TunnelHeadroom-20, off)
			out := buf[off : off+n]
			require.Len(t, out, 20+p.L3Off+p.Len)
			pkt := ht.Decode(out)
			outer := pkt.Layers()[1].(*layers.IPv4)
			assert.Equal(t, layers.IPProtocolIPv4, outer.Protocol)
			assert.Equal(t, tc.wantTOS, outer.TOS)
			assert.Equal(t, tc.wantDF, outer.Flags&layers.IPv4DontFragment != 0)
			assert.Equal(t, uint16(77), outer.Id)
			assert.Equal(t, uint8(64), outer.TTL)
			assert.Equal(t, []byte(dip.AsSlice()), []byte(outer.SrcIP.To4()))
			assert.Equal(t, []byte(rip.AsSlice()), []byte(outer.DstIP.To4()))
			assert.True(t, header.IPv4(out[14:]).IsChecksumValid())
			assert.Equal(t, inner[14:p.L3Off+p.Len], out[34:], "the inner packet is carried whole")
			assert.Equal(t, uint16(54), vnet.CsumStart())
			assert.Equal(t, header.Ethernet(inner).Source(), header.Ethernet(out).Source())
		})
	}
}

// BenchmarkParseNATIn is the per-packet cost the director pays for a NAT
// packet apart from I/O: parse, hop check, destination rewrite.
func BenchmarkParseNATIn(b *testing.B) {
	f := ht.TCP(ht.Spec{Src: cip, Dst: vip, SrcPort: 40000, DstPort: 80, TCPFlags: header.TCPFlagACK, Payload: make([]byte, 1400)})
	reply := make([]byte, 1500)
	var p parse.Packet
	hop := Hop{MTU: 1500}
	b.ReportAllocs()
	for b.Loop() {
		if parse.Frame(f, nil, &p) != parse.OK {
			b.Fatal("parse")
		}
		if v, _ := hop.Check(reply, f, nil, &p); v != Forward {
			b.Fatal(v)
		}
		NATIn(f, nil, &p, rip, 8080)
		// Back, so the next round parses the same packet.
		NATIn(f, nil, &p, vip, 80)
		ip := header.IPv4(f[14:])
		ip.SetTTL(64)
		ip.SetChecksum(header.UpdateChecksum(ip.Checksum(), header.WordDelta(63<<8|6, 64<<8|6)))
	}
}

func TestTunnelICMP(t *testing.T) {
	// The client's packet, tunnelled by us to the RS, bounced by a router
	// on the way with fragmentation needed (MTU 1400).
	tunnelled := func(df bool) []byte {
		inner := ht.TCP(ht.Spec{Src: cip, Dst: vip, SrcPort: 40000, DstPort: 80, DF: df, Payload: make([]byte, 1400)})
		buf := make([]byte, TunnelHeadroom+len(inner))
		copy(buf[TunnelHeadroom:], inner)
		p := mustParse(t, buf[TunnelHeadroom:], nil)
		off, n := Tunnel{Src: dip, RIP: rip, PMTUDisc: true}.Encapsulate(buf, TunnelHeadroom, len(inner), nil, p, 5)
		return ht.ICMPError(netip.MustParseAddr("10.0.0.254"), dip, 3, 4, 1400, buf[off:off+n], 20+20+8) // outer and client IP headers, ports
	}
	f := tunnelled(true)
	p := mustParse(t, f, nil)
	require.True(t, p.Tunneled)
	assert.Equal(t, parse.Flow{Proto: 6, Src: cip, Dst: vip, SrcPort: 40000, DstPort: 80}, p.Inner)

	out := make([]byte, 1500)
	n := TunnelICMP(out, f, p, 1500)
	require.NotZero(t, n)
	q := mustParse(t, out[:n], nil)
	assert.Equal(t, parse.Flow{Proto: 1, Src: vip, Dst: cip}, q.Flow, "from the VIP to the client")
	assert.Equal(t, p.Inner, q.Inner, "quoting the client's own packet")
	assert.Equal(t, uint16(1380), header.ICMPv4(out[q.L4Off:]).MTU(), "reported MTU less the outer header")

	n = TunnelICMP(out, f, p, 1280)
	q = mustParse(t, out[:n], nil)
	assert.Equal(t, uint16(1260), header.ICMPv4(out[q.L4Off:]).MTU(), "a smaller route MTU wins")

	nodf := tunnelled(false)
	assert.Zero(t, TunnelICMP(out, nodf, mustParse(t, nodf, nil), 1500), "a client without DF gets nothing")
}

func TestTunnelEncapsulateIPv6Outer(t *testing.T) {
	dip6 := netip.MustParseAddr("2001:db8:2::1")
	for _, in := range []struct {
		name  string
		frame []byte
		next  layers.IPProtocol
	}{
		{"IPv4 in IPv6", ht.TCP(ht.Spec{Src: cip, Dst: vip, SrcPort: 1, DstPort: 80, TOS: 0x2b, TTL: 9, Payload: []byte("x")}), layers.IPProtocolIPv4},
		{"IPv6 in IPv6", ht.TCP(ht.Spec{Src: cip6, Dst: vip6, SrcPort: 1, DstPort: 80, TOS: 0x2b, TTL: 9, Payload: []byte("x")}), layers.IPProtocolIPv6},
	} {
		t.Run(in.name, func(t *testing.T) {
			buf := make([]byte, TunnelHeadroom+len(in.frame))
			copy(buf[TunnelHeadroom:], in.frame)
			p := mustParse(t, buf[TunnelHeadroom:], nil)
			tun := Tunnel{Src: dip6, RIP: rip6}
			require.Equal(t, 40, tun.Overhead())
			off, n := tun.Encapsulate(buf, TunnelHeadroom, len(in.frame), nil, p, 0)
			require.Equal(t, 0, off)
			out := buf[off : off+n]
			outer := ht.Decode(out).Layers()[1].(*layers.IPv6)
			assert.Equal(t, in.next, outer.NextHeader)
			assert.Equal(t, uint8(0x2a), outer.TrafficClass, "DSCP copied, CE becomes ECT(0)")
			assert.Equal(t, uint8(9), outer.HopLimit)
			assert.Equal(t, []byte(rip6.AsSlice()), []byte(outer.DstIP))
			assert.Equal(t, in.frame[14:p.L3Off+p.Len], out[54:], "the inner packet is carried whole")
		})
	}
}

func TestHopCheckIPv6Tunnel(t *testing.T) {
	f := ht.UDP(ht.Spec{Src: cip6, Dst: vip6, Payload: make([]byte, 1450)})
	p := mustParse(t, f, nil)
	reply := make([]byte, 2048)
	v, n := Hop{MTU: 1500, Tunnel: true, Outer6: true}.Check(reply, f, nil, p)
	require.Equal(t, Reply, v)
	assert.Equal(t, uint32(1460), header.ICMPv6(reply[54:n]).MTU(), "route MTU less the IPv6 outer header")
	v, _ = Hop{MTU: 1300, Tunnel: true, Outer6: true}.Check(reply, ht.UDP(ht.Spec{Src: cip6, Dst: vip6}), nil, mustParse(t, ht.UDP(ht.Spec{Src: cip6, Dst: vip6}), nil))
	assert.Equal(t, Drop, v, "a tunnel MTU below 1280 drops")
}
