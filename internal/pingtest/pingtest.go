// Package pingtest sends ICMP echo requests for lab tests: a ping from
// inside a node, and who answered it.
package pingtest

import (
	"fmt"
	"net"
	"net/netip"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
)

// Echo sends one IPv4 echo request with size bytes of data to dst from the
// calling thread's network namespace and waits up to 5 s for its reply. It
// fails unless the reply comes from dst itself.
func Echo(dst netip.Addr, size int) error {
	c, err := icmp.ListenPacket("ip4:icmp", "0.0.0.0")
	if err != nil {
		return err
	}
	defer c.Close()
	const id, seq = 0x1b5, 1
	req, err := (&icmp.Message{Type: ipv4.ICMPTypeEcho, Body: &icmp.Echo{ID: id, Seq: seq, Data: make([]byte, size)}}).Marshal(nil)
	if err != nil {
		return err
	}
	if _, err := c.WriteTo(req, &net.IPAddr{IP: dst.AsSlice()}); err != nil {
		return err
	}
	if err := c.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		return err
	}
	buf := make([]byte, size+128)
	for {
		n, from, err := c.ReadFrom(buf)
		if err != nil {
			return err
		}
		m, err := icmp.ParseMessage(1, buf[:n])
		if err != nil {
			return err
		}
		if e, ok := m.Body.(*icmp.Echo); ok && m.Type == ipv4.ICMPTypeEchoReply && e.ID == id && e.Seq == seq {
			if got := from.(*net.IPAddr).IP.String(); got != dst.String() {
				return fmt.Errorf("echo reply from %s, want %s", got, dst)
			}
			return nil
		}
	}
}
