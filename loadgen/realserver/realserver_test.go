package realserver

import (
	"io"
	"math"
	"net"
	"net/http"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lvslab/lvslab/loadgen/wire"
)

func TestParseDist(t *testing.T) {
	for in, want := range map[string]Dist{
		"":                {},
		"2ms":             {Shape: Fixed, Mean: 2 * time.Millisecond},
		"fixed:1s":        {Shape: Fixed, Mean: time.Second},
		"uniform:1ms-3ms": {Shape: Uniform, Min: time.Millisecond, Max: 3 * time.Millisecond},
		"exp:2ms":         {Shape: Exponential, Mean: 2 * time.Millisecond},
	} {
		got, err := ParseDist(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	for _, in := range []string{"-1ms", "uniform:3ms-1ms", "uniform:1ms", "gauss:1ms", "exp:", "fast"} {
		_, err := ParseDist(in)
		assert.Error(t, err, in)
	}
}

func TestDistSample(t *testing.T) {
	assert.Equal(t, 2*time.Millisecond, Dist{Shape: Fixed, Mean: 2 * time.Millisecond}.Sample(0.9))
	assert.Equal(t, 2*time.Millisecond, Dist{Shape: Uniform, Min: time.Millisecond, Max: 3 * time.Millisecond}.Sample(0.5), "the middle of 1..3 ms")
	// The exponential's median is mean·ln 2.
	assert.InDelta(t, float64(2*time.Millisecond)*math.Ln2, float64(Dist{Shape: Exponential, Mean: 2 * time.Millisecond}.Sample(0.5)), 1)
	assert.True(t, Dist{}.Zero())
}

func TestParseFault(t *testing.T) {
	for in, want := range map[string]Fault{
		"none": {}, "hang": {Mode: Hang}, "slow:200ms": {Mode: Slow, Delay: 200 * time.Millisecond},
		"reset": {Mode: Reset}, "error": {Mode: ErrorStatus, Status: 503}, "error:500": {Mode: ErrorStatus, Status: 500},
		"refuse": {Mode: Refuse},
	} {
		got, err := ParseFault(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
		back, err := ParseFault(got.String())
		require.NoError(t, err)
		assert.Equal(t, got, back, "String reads back")
	}
	for _, in := range []string{"slow", "slow:0s", "error:200", "hang:5s", "crash"} {
		_, err := ParseFault(in)
		assert.Error(t, err, in)
	}
}

func listen(t *testing.T, cfg Config) *Server {
	t.Helper()
	cfg.Listen = netip.MustParseAddrPort("127.0.0.1:0")
	s, err := Listen(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	return s
}

func get(t *testing.T, s *Server) (*http.Response, error) {
	t.Helper()
	c := http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	return c.Get("http://" + s.Addr().String() + "/")
}

func TestHTTPServerNamesItself(t *testing.T) {
	s := listen(t, Config{Kind: wire.HTTP, ID: "rs1", ResponseBytes: 1234, Header: "X-Backend"})
	resp, err := get(t, s)
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, 200, resp.StatusCode)
	assert.Equal(t, "rs1", resp.Header.Get("X-Backend"))
	assert.Len(t, body, 1234)
	st := s.Stats()
	assert.Equal(t, uint64(1), st.Responses)
	assert.Equal(t, uint64(1), st.Connections)
}

func TestRefuseClosesAndRestoreReopens(t *testing.T) {
	s := listen(t, Config{Kind: wire.HTTP, ID: "rs1"})
	addr := s.Addr()
	require.NoError(t, s.SetFault(Fault{Mode: Refuse}))
	_, err := net.Dial("tcp", addr.String())
	assert.ErrorContains(t, err, "refused")
	require.NoError(t, s.SetFault(Fault{}))
	assert.Equal(t, addr, s.Addr(), "the same address again")
	resp, err := get(t, s)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, 200, resp.StatusCode)
}

func TestQueueBeyondCapacityIsRejected(t *testing.T) {
	s := listen(t, Config{Kind: wire.HTTP, ID: "rs1", MaxConcurrency: 1, MaxQueue: 1})
	require.NoError(t, s.SetFault(Fault{Mode: Slow, Delay: 300 * time.Millisecond}))
	codes := make(chan int, 3)
	for range 3 {
		go func() {
			resp, err := get(t, s)
			if err != nil {
				codes <- 0
				return
			}
			resp.Body.Close()
			codes <- resp.StatusCode
		}()
	}
	got := map[int]int{}
	for range 3 {
		got[<-codes]++
	}
	assert.Equal(t, map[int]int{200: 2, 503: 1}, got, "one served, one queued then served, one turned away")
	assert.Equal(t, uint64(1), s.Stats().Rejected)
}

func TestHangHoldsUntilTheModeChanges(t *testing.T) {
	s := listen(t, Config{Kind: wire.TCP, ID: "rs1"})
	require.NoError(t, s.SetFault(Fault{Mode: Hang}))
	c, err := net.Dial("tcp", s.Addr().String())
	require.NoError(t, err)
	defer c.Close()
	req := make([]byte, wire.RequestLen)
	wire.PutRequest(req, wire.RequestLen, 0, 9)
	_, err = c.Write(req)
	require.NoError(t, err)
	require.Eventually(t, func() bool { return s.Stats().Hung == 1 }, 5*time.Second, 5*time.Millisecond)
	require.NoError(t, s.SetFault(Fault{}))
	resp := make([]byte, wire.PrefixLen)
	_, err = io.ReadFull(c, resp)
	require.NoError(t, err)
	p := wire.Prefix(resp)
	assert.True(t, p.Valid())
	assert.Equal(t, uint32(9), p.Seq())
	assert.Equal(t, "rs1", string(p.ID()))
}

func TestForeignTCPRequestGetsOneAnswer(t *testing.T) {
	s := listen(t, Config{Kind: wire.TCP, ID: "rs1", ResponseBytes: 64})
	c, err := net.Dial("tcp", s.Addr().String())
	require.NoError(t, err)
	defer c.Close()
	_, err = c.Write([]byte("hello\n"))
	require.NoError(t, err)
	b, err := io.ReadAll(c)
	require.NoError(t, err, "the server answers and closes")
	assert.Len(t, b, 64)
	assert.Equal(t, "rs1", string(wire.Prefix(b).ID()))
}

func TestConfigChecks(t *testing.T) {
	ap := netip.MustParseAddrPort("127.0.0.1:0")
	for _, cfg := range []Config{
		{Kind: wire.HTTP, ID: "x"},
		{Listen: ap, Kind: wire.HTTP},
		{Listen: ap, Kind: wire.TCP, ID: "a-name-much-longer-than-24-bytes"},
		{Listen: ap, Kind: wire.UDP, ID: "x", ResponseBytes: 70000},
	} {
		_, err := Listen(cfg)
		assert.Error(t, err)
	}
	s := listen(t, Config{Kind: wire.UDP, ID: "x"})
	assert.Error(t, s.SetFault(Fault{Mode: Reset}), "udp has no reset")
}

// TestUDPAnswersFromTheAddressItWasAskedAt is the DR/TUN case: the server
// listens on the wildcard address, the client asks at another local address
// (the VIP on lo) from a connected socket, which drops replies from any
// other source.
func TestUDPAnswersFromTheAddressItWasAskedAt(t *testing.T) {
	s, err := Listen(Config{Listen: netip.MustParseAddrPort("0.0.0.0:0"), Kind: wire.UDP, ID: "rs7"})
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	vip := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.7"), s.Addr().Port())

	c, err := net.DialUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")), net.UDPAddrFromAddrPort(vip))
	require.NoError(t, err)
	defer c.Close()
	req := make([]byte, wire.RequestLen)
	wire.PutRequest(req, wire.RequestLen, 0, 42)
	_, err = c.Write(req)
	require.NoError(t, err)

	require.NoError(t, c.SetReadDeadline(time.Now().Add(5*time.Second)))
	buf := make([]byte, 2048)
	n, from, err := c.ReadFromUDPAddrPort(buf)
	require.NoError(t, err, "no reply reached the connected client")
	assert.Equal(t, vip, from)
	p := wire.Prefix(buf[:n])
	require.True(t, p.Valid())
	assert.Equal(t, uint32(42), p.Seq())
	assert.Equal(t, "rs7", string(p.ID()))
}

// TestSeveralPortsAreOneServer serves two ports: each answers with the
// server's name, a refuse closes both and a restore opens both again, and
// the capacity is the server's, not a port's.
func TestSeveralPortsAreOneServer(t *testing.T) {
	s := listen(t, Config{Kind: wire.HTTP, ID: "rs1", Ports: []uint16{0}, MaxConcurrency: 1, MaxQueue: 1})
	addrs := s.Addrs()
	require.Len(t, addrs, 2)
	require.NotEqual(t, addrs[0].Port(), addrs[1].Port())
	assert.Equal(t, addrs[0], s.Addr())
	getAt := func(ap netip.AddrPort) (int, error) {
		c := http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
		resp, err := c.Get("http://" + ap.String() + "/")
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		assert.Equal(t, "rs1", resp.Header.Get(wire.ServerHeader))
		return resp.StatusCode, nil
	}
	for _, ap := range addrs {
		code, err := getAt(ap)
		require.NoError(t, err, ap)
		assert.Equal(t, 200, code, ap)
	}

	require.NoError(t, s.SetFault(Fault{Mode: Refuse}))
	for _, ap := range addrs {
		_, err := net.Dial("tcp", ap.String())
		assert.ErrorContains(t, err, "refused", ap)
	}
	require.NoError(t, s.SetFault(Fault{}))
	assert.Equal(t, addrs, s.Addrs(), "the same addresses again")

	// One slot and one queue place for both ports: a slow request on
	// each port fills them, a third on either port is turned away.
	require.NoError(t, s.SetFault(Fault{Mode: Slow, Delay: 300 * time.Millisecond}))
	codes := make(chan int, 3)
	for _, ap := range []netip.AddrPort{addrs[0], addrs[1], addrs[1]} {
		go func() {
			code, _ := getAt(ap)
			codes <- code
		}()
	}
	got := map[int]int{}
	for range 3 {
		got[<-codes]++
	}
	assert.Equal(t, map[int]int{200: 2, 503: 1}, got)
	assert.Equal(t, uint64(2+2), s.Stats().Responses)
}

// TestSeveralUDPPorts answers datagrams on each port with the server's name.
func TestSeveralUDPPorts(t *testing.T) {
	s := listen(t, Config{Kind: wire.UDP, ID: "rs2", Ports: []uint16{0}})
	for _, ap := range s.Addrs() {
		c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(ap))
		require.NoError(t, err)
		req := make([]byte, wire.RequestLen)
		wire.PutRequest(req, wire.RequestLen, 0, 7)
		_, err = c.Write(req)
		require.NoError(t, err)
		require.NoError(t, c.SetReadDeadline(time.Now().Add(5*time.Second)))
		buf := make([]byte, 2048)
		n, err := c.Read(buf)
		c.Close()
		require.NoError(t, err, ap)
		assert.Equal(t, "rs2", string(wire.Prefix(buf[:n]).ID()), ap)
	}
}

func TestAPortInUseOpensNothing(t *testing.T) {
	s := listen(t, Config{Kind: wire.TCP, ID: "rs1"})
	taken := s.Addr()
	_, err := Listen(Config{Listen: netip.MustParseAddrPort("127.0.0.1:0"), Ports: []uint16{taken.Port()}, Kind: wire.TCP, ID: "rs2"})
	assert.ErrorContains(t, err, "address already in use")
}
