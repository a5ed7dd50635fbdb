// Package headertest builds Ethernet frames for tests of the packet path,
// with gopacket as an independent reference for layouts and checksums.
package headertest

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// MACs used by test frames.
var (
	ClientMAC   = net.HardwareAddr{0x02, 0, 0, 0, 0, 1}
	DirectorMAC = net.HardwareAddr{0x02, 0, 0, 0, 0, 2}
)

// Spec describes a test packet.
type Spec struct {
	Src, Dst         netip.Addr
	SrcPort, DstPort uint16
	TTL              uint8 // default 64
	DF               bool
	TCPFlags         uint8 // header.TCPFlag*; TCP only
	Payload          []byte
	TOS              uint8
}

func ipLayer(s Spec, proto layers.IPProtocol) (gopacket.SerializableLayer, gopacket.NetworkLayer, layers.EthernetType) {
	ttl := s.TTL
	if ttl == 0 {
		ttl = 64
	}
	if s.Src.Is4() {
		ip := &layers.IPv4{Version: 4, TTL: ttl, TOS: s.TOS, Protocol: proto, SrcIP: s.Src.AsSlice(), DstIP: s.Dst.AsSlice(), Id: 0x1234}
		if s.DF {
			ip.Flags = layers.IPv4DontFragment
		}
		return ip, ip, layers.EthernetTypeIPv4
	}
	ip := &layers.IPv6{Version: 6, HopLimit: ttl, TrafficClass: s.TOS, NextHeader: proto, SrcIP: s.Src.AsSlice(), DstIP: s.Dst.AsSlice()}
	return ip, ip, layers.EthernetTypeIPv6
}

func serialize(ls ...gopacket.SerializableLayer) []byte {
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
		panic(err) // test input built by the test itself
	}
	return buf.Bytes()
}

func eth(t layers.EthernetType) *layers.Ethernet {
	return &layers.Ethernet{SrcMAC: ClientMAC, DstMAC: DirectorMAC, EthernetType: t}
}

// TCP returns an Ethernet frame with a TCP segment.
func TCP(s Spec) []byte {
	ipl, nl, et := ipLayer(s, layers.IPProtocolTCP)
	f := s.TCPFlags
	tcp := &layers.TCP{SrcPort: layers.TCPPort(s.SrcPort), DstPort: layers.TCPPort(s.DstPort), Seq: 100, Ack: 200, Window: 1000,
		FIN: f&0x01 != 0, SYN: f&0x02 != 0, RST: f&0x04 != 0, PSH: f&0x08 != 0, ACK: f&0x10 != 0}
	_ = tcp.SetNetworkLayerForChecksum(nl)
	return serialize(eth(et), ipl, tcp, gopacket.Payload(s.Payload))
}

// UDP returns an Ethernet frame with a UDP datagram.
func UDP(s Spec) []byte {
	ipl, nl, et := ipLayer(s, layers.IPProtocolUDP)
	udp := &layers.UDP{SrcPort: layers.UDPPort(s.SrcPort), DstPort: layers.UDPPort(s.DstPort)}
	_ = udp.SetNetworkLayerForChecksum(nl)
	return serialize(eth(et), ipl, udp, gopacket.Payload(s.Payload))
}

// SCTPInit returns an Ethernet frame with an SCTP INIT.
func SCTPInit(s Spec) []byte {
	ipl, _, et := ipLayer(s, layers.IPProtocolSCTP)
	sc := &layers.SCTP{SrcPort: layers.SCTPPort(s.SrcPort), DstPort: layers.SCTPPort(s.DstPort)}
	init := &layers.SCTPInit{SCTPChunk: layers.SCTPChunk{Type: layers.SCTPChunkTypeInit}, InitiateTag: 9, AdvertisedReceiverWindowCredit: 1 << 16, OutboundStreams: 1, InboundStreams: 1, InitialTSN: 77}
	return serialize(eth(et), ipl, sc, init)
}

// ICMPError returns an Ethernet frame from src to dst carrying an ICMP (or
// ICMPv6) error of type t and code c that quotes the IP packet of quote
// (an Ethernet frame), cut to limit bytes of IP packet (0: whole).
func ICMPError(src, dst netip.Addr, t, c uint8, rest uint32, quote []byte, limit int) []byte {
	q := quote[14:]
	if n := ipLen(q); n < len(q) {
		q = q[:n] // drop the Ethernet minimum-size padding
	}
	if limit > 0 && limit < len(q) {
		q = q[:limit]
	}
	s := Spec{Src: src, Dst: dst}
	if src.Is4() {
		ipl, _, et := ipLayer(s, layers.IPProtocolICMPv4)
		ic := &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(t, c), Id: uint16(rest >> 16), Seq: uint16(rest)}
		return serialize(eth(et), ipl, ic, gopacket.Payload(q))
	}
	ipl, nl, et := ipLayer(s, layers.IPProtocolICMPv6)
	ic := &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(t, c)}
	_ = ic.SetNetworkLayerForChecksum(nl)
	var r [4]byte
	r[0], r[1], r[2], r[3] = byte(rest>>24), byte(rest>>16), byte(rest>>8), byte(rest)
	return serialize(eth(et), ipl, ic, gopacket.Payload(append(r[:], q...)))
}

// Decode parses frame with gopacket for assertions.
func Decode(frame []byte) gopacket.Packet {
	return gopacket.NewPacket(frame, layers.LayerTypeEthernet, gopacket.Default)
}

// ipLen returns the length of the IP packet at the start of b.
func ipLen(b []byte) int {
	switch {
	case len(b) >= 20 && b[0]>>4 == 4:
		return int(b[2])<<8 | int(b[3])
	case len(b) >= 40 && b[0]>>4 == 6:
		return 40 + (int(b[4])<<8 | int(b[5]))
	}
	return len(b)
}

// Seeds returns well-formed frames of every kind the packet path handles,
// for fuzz seed corpora: TCP, UDP and SCTP over IPv4 and IPv6, and ICMP
// errors quoting them.
func Seeds() [][]byte {
	c, v, r := netip.MustParseAddr("192.168.1.10"), netip.MustParseAddr("192.168.1.110"), netip.MustParseAddr("10.0.0.2")
	c6, v6 := netip.MustParseAddr("2001:db8:1::10"), netip.MustParseAddr("2001:db8:1::110")
	udp := UDP(Spec{Src: c, Dst: v, SrcPort: 5353, DstPort: 53, Payload: []byte("q")})
	tcp6 := TCP(Spec{Src: c6, Dst: v6, SrcPort: 2, DstPort: 3})
	return [][]byte{
		TCP(Spec{Src: c, Dst: v, SrcPort: 40000, DstPort: 443, TCPFlags: 0x02, DF: true}),
		udp,
		SCTPInit(Spec{Src: c, Dst: v, SrcPort: 7, DstPort: 9}),
		tcp6,
		UDP(Spec{Src: c6, Dst: v6, SrcPort: 4, DstPort: 5}),
		ICMPError(r, c, 3, 3, 0, udp, 0),
		ICMPError(r, c, 3, 4, 1400, udp, 0),
		ICMPError(v6, c6, 2, 0, 1280, tcp6, 0),
		ICMPError(c, v, 8, 0, 1, make([]byte, 14), 0),
		ICMPError(netip.MustParseAddr("10.0.0.254"), netip.MustParseAddr("10.0.0.1"), 3, 4, 1400, ipip(udp, netip.MustParseAddr("10.0.0.1"), r), 0),
	}
}

// ipip wraps the IPv4 packet of frame in an outer IPv4 header, as the
// director's TUN transmitter does (built with gopacket, independently).
func ipip(frame []byte, src, dst netip.Addr) []byte {
	q := frame[14:]
	if n := ipLen(q); n < len(q) {
		q = q[:n]
	}
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolIPv4, SrcIP: src.AsSlice(), DstIP: dst.AsSlice()}
	return serialize(eth(layers.EthernetTypeIPv4), ip, gopacket.Payload(q))
}

// WriteCorpus writes fuzz seed files for a target taking (frame, vnet
// []byte) into dir: every seed frame without and with vnet.
func WriteCorpus(dir string, vnet []byte) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for i, fr := range Seeds() {
		for j, v := range [][]byte{nil, vnet} {
			body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n[]byte(%q)\n", fr, v)
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed-%02d-%d", i, j)), []byte(body), 0o644); err != nil {
				return err
			}
		}
	}
	return nil
}
