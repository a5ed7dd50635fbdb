package engine_test

import (
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// BenchmarkBulkTCP is one TCP connection from the client to the VIP
// carrying b.N megabytes to a real server through the running director, in
// each forwarding method (the client's upload crosses the director in all
// three; in NAT the real server's ACKs come back through it too), and
// "direct": the same client to a real server's own address on the DR lab's
// segment, no director on the path (the baseline); nat-2workers runs two
// packet goroutines. MB/s is the throughput.
//
//	go test -run '^$' -bench BulkTCP -benchtime 500x ./dataplane/engine
func BenchmarkBulkTCP(b *testing.B) {
	const port = 9000
	for _, c := range []struct {
		mode, example string
		flags         []string
	}{
		{"direct", "dr", nil},
		{"nat", "nat", nil},
		{"nat-2workers", "nat", []string{"--workers", "2"}},
		{"dr", "dr", nil},
		{"tun", "tun", nil},
	} {
		mode := c.mode
		b.Run(mode, func(b *testing.B) {
			lb := startLab(b, c.example, "rr", c.flags...)
			vs := netip.AddrPortFrom(vip, port).String()
			lb.ipvsadm(b, "-A", "-t", vs, "-s", "rr")
			for rip, node := range lb.rips {
				sink(b, lb, node, port)
				method := map[string]string{"nat": "-m", "dr": "-g", "tun": "-i"}[c.example]
				lb.ipvsadm(b, "-a", "-t", vs, "-r", netip.AddrPortFrom(rip, port).String(), method)
			}
			to := vs
			if mode == "direct" {
				for rip := range lb.rips {
					to = netip.AddrPortFrom(rip, port).String()
					break
				}
			}
			pushBulk(b, lb, to)
		})
	}
}

// pushBulk is the benchmark loop of a bulk upload from the client to to:
// one connection, 1 MB a write.
func pushBulk(b *testing.B, lb *lab, to string) {
	var c net.Conn
	require.NoError(b, lb.in.Do("client", func() (err error) {
		c, err = net.DialTimeout("tcp", to, 5*time.Second)
		return err
	}))
	buf := make([]byte, 1<<20)
	b.SetBytes(int64(len(buf)))
	for b.Loop() {
		_, err := c.Write(buf)
		require.NoError(b, err)
	}
	// Close in order while the director still runs: our FIN, the server's
	// FIN, our ACK. A socket orphaned mid-close would keep its namespace
	// alive for minutes.
	require.NoError(b, c.(*net.TCPConn).CloseWrite())
	_, err := io.Copy(io.Discard, c)
	require.NoError(b, err)
	c.Close()
}

// sink accepts connections on port in node and discards what they carry,
// until the test ends.
func sink(t testing.TB, lb *lab, node string, port uint16) {
	t.Helper()
	var l net.Listener
	require.NoError(t, lb.in.Do(node, func() (err error) {
		l, err = net.Listen("tcp", netip.AddrPortFrom(netip.IPv4Unspecified(), port).String())
		return err
	}))
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				io.Copy(io.Discard, c)
				c.Close()
			}()
		}
	}()
}
