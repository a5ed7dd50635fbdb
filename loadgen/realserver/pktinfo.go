package realserver

import (
	"net"
	"net/netip"
	"unsafe"

	"golang.org/x/sys/unix"
)

// udpSocket answers each datagram from the address it was sent to. A real
// server in DR or TUN mode owns the VIP on lo; bound to the wildcard address,
// a plain reply would leave from its own address and the client, which sent
// to the VIP, would drop it. IP_PKTINFO (IPV6_RECVPKTINFO) tells the
// destination of each request, and the reply names it as its source.
type udpSocket struct {
	pc      *net.UDPConn
	pktinfo bool // enabled: the socket is bound to a wildcard address
}

func newUDPSocket(pc *net.UDPConn) (*udpSocket, error) {
	s := &udpSocket{pc: pc}
	if !pc.LocalAddr().(*net.UDPAddr).AddrPort().Addr().IsUnspecified() {
		return s, nil
	}
	rc, err := pc.SyscallConn()
	if err != nil {
		return nil, err
	}
	var serr error
	err = rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_PKTINFO, 1)
		if serr == nil {
			// Dual-stack sockets also carry IPv6 requests; a v4-only
			// socket refuses the option, which is fine.
			_ = unix.SetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_RECVPKTINFO, 1)
		}
	})
	if err == nil {
		err = serr
	}
	if err != nil {
		return nil, err
	}
	s.pktinfo = true
	return s, nil
}

// oobLen holds one IPv6 packet-info message, the larger of the two.
var oobLen = unix.CmsgSpace(unix.SizeofInet6Pktinfo)

// read returns a datagram, its sender and the address it was sent to
// (invalid when unknown). oob is a scratch buffer of oobLen bytes.
func (s *udpSocket) read(b, oob []byte) (int, netip.AddrPort, netip.Addr, error) {
	if !s.pktinfo {
		n, from, err := s.pc.ReadFromUDPAddrPort(b)
		return n, from, netip.Addr{}, err
	}
	n, oobn, _, from, err := s.pc.ReadMsgUDPAddrPort(b, oob)
	if err != nil {
		return 0, from, netip.Addr{}, err
	}
	return n, from, pktinfoDst(oob[:oobn]), nil
}

// pktinfoDst finds the destination address in the control messages.
func pktinfoDst(oob []byte) netip.Addr {
	for len(oob) >= unix.SizeofCmsghdr {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
		if h.Len < unix.SizeofCmsghdr || int(h.Len) > len(oob) {
			return netip.Addr{}
		}
		data := oob[unix.CmsgLen(0):h.Len]
		switch {
		case h.Level == unix.IPPROTO_IP && h.Type == unix.IP_PKTINFO && len(data) >= unix.SizeofInet4Pktinfo:
			pi := (*unix.Inet4Pktinfo)(unsafe.Pointer(&data[0]))
			return netip.AddrFrom4(pi.Addr)
		case h.Level == unix.IPPROTO_IPV6 && h.Type == unix.IPV6_PKTINFO && len(data) >= unix.SizeofInet6Pktinfo:
			pi := (*unix.Inet6Pktinfo)(unsafe.Pointer(&data[0]))
			return netip.AddrFrom16(pi.Addr)
		}
		oob = oob[unix.CmsgSpace(int(h.Len)-unix.CmsgLen(0)):]
	}
	return netip.Addr{}
}

// write sends b to to, from src when src is valid. oob is a scratch buffer
// of oobLen bytes.
func (s *udpSocket) write(b []byte, to netip.AddrPort, src netip.Addr, oob []byte) {
	if !s.pktinfo || !src.IsValid() {
		s.pc.WriteToUDPAddrPort(b, to)
		return
	}
	clear(oob)
	h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
	var n int
	if src.Unmap().Is4() {
		h.Level, h.Type = unix.IPPROTO_IP, unix.IP_PKTINFO
		h.SetLen(unix.CmsgLen(unix.SizeofInet4Pktinfo))
		pi := (*unix.Inet4Pktinfo)(unsafe.Pointer(&oob[unix.CmsgLen(0)]))
		pi.Spec_dst = src.Unmap().As4()
		n = unix.CmsgSpace(unix.SizeofInet4Pktinfo)
	} else {
		h.Level, h.Type = unix.IPPROTO_IPV6, unix.IPV6_PKTINFO
		h.SetLen(unix.CmsgLen(unix.SizeofInet6Pktinfo))
		pi := (*unix.Inet6Pktinfo)(unsafe.Pointer(&oob[unix.CmsgLen(0)]))
		pi.Addr = src.As16()
		n = unix.CmsgSpace(unix.SizeofInet6Pktinfo)
	}
	s.pc.WriteMsgUDPAddrPort(b, oob[:n], to)
}
