// Package fwdbench measures forwarding through a director namespace on veth,
// side by side in one run and reported as ratios: kernel routing, nftables
// DNAT (numgen), the director itself (dataplane/engine, with a virtual
// service, its connection table and scheduler, in NAT and DR), and the
// static AF_PACKET forwarder of this package (NAT over recvmmsg, NAT over a
// TPACKET_V2 ring, direct routing). Loads are real programs: iperf3 for
// bulk TCP and small UDP datagrams (saturating and at a fixed rate below
// saturation), wrk against nginx for new connections per second. It builds
// its own three-namespace lab (client — director — server).
//
// The static forwarder is a measuring instrument with one mapping, not the
// director: it has no connection table and no scheduler. Its rows show
// what the packet I/O alone reaches, so the director's own cost is visible.
package fwdbench

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/lvslab/lvslab/dataplane/header"
	"github.com/lvslab/lvslab/topo"
)

// Lab is client — director — server on two veth pairs, in three named
// network namespaces whose names start with the lab's name ("lvs…").
type Lab struct {
	Name                       string
	Client, Director, Server   string // namespace names
	ClientAddr, ServerAddr     netip.Addr
	DirClientAddr, DirServAddr netip.Addr // the director's addresses, gateways of each side
	VIP                        netip.Addr
	// MACs of the four veth ends.
	ClientMAC, DirClientMAC, DirServMAC, ServerMAC header.MAC
}

// Interface names inside the namespaces.
const (
	ClientIf    = "lvsc0"
	DirClientIf = "lvsd0"
	DirServerIf = "lvsd1"
	ServerIf    = "lvss0"
)

// NewLab builds a lab named prefix + a random suffix. On error nothing is
// left behind.
func NewLab(prefix string) (l *Lab, err error) {
	var r [3]byte
	if _, err := rand.Read(r[:]); err != nil {
		return nil, err
	}
	name := prefix + hex.EncodeToString(r[:])
	l = &Lab{
		Name: name, Client: name + "-c", Director: name + "-d", Server: name + "-s",
		ClientAddr: netip.MustParseAddr("10.201.1.2"), DirClientAddr: netip.MustParseAddr("10.201.1.1"),
		DirServAddr: netip.MustParseAddr("10.201.2.1"), ServerAddr: netip.MustParseAddr("10.201.2.2"),
		VIP: netip.MustParseAddr("10.201.1.100"),
	}
	defer func() {
		if err != nil {
			l.Close()
			l = nil
		}
	}()
	for _, ns := range []string{l.Client, l.Director, l.Server} {
		if err := run("ip", "netns", "add", ns); err != nil {
			return l, err
		}
	}
	steps := [][]string{
		{"-n", l.Client, "link", "add", ClientIf, "type", "veth", "peer", "name", DirClientIf, "netns", l.Director},
		{"-n", l.Server, "link", "add", ServerIf, "type", "veth", "peer", "name", DirServerIf, "netns", l.Director},
		{"-n", l.Client, "addr", "add", l.ClientAddr.String() + "/24", "dev", ClientIf},
		{"-n", l.Director, "addr", "add", l.DirClientAddr.String() + "/24", "dev", DirClientIf},
		// The VIP lives on the director's client side so the kernel answers
		// ARP for it; the IP packets themselves never reach that kernel
		// while the userspace forwarder runs (nft netdev ingress drop).
		{"-n", l.Director, "addr", "add", l.VIP.String() + "/32", "dev", DirClientIf},
		{"-n", l.Director, "addr", "add", l.DirServAddr.String() + "/24", "dev", DirServerIf},
		{"-n", l.Server, "addr", "add", l.ServerAddr.String() + "/24", "dev", ServerIf},
		// For direct routing the server owns the VIP on lo (§5.6); it
		// never answers ARP for it on its veth (the VIP is not on that
		// link's subnet).
		{"-n", l.Server, "addr", "add", l.VIP.String() + "/32", "dev", "lo"},
		{"-n", l.Client, "link", "set", "lo", "up"},
		{"-n", l.Director, "link", "set", "lo", "up"},
		{"-n", l.Server, "link", "set", "lo", "up"},
		{"-n", l.Client, "link", "set", ClientIf, "up"},
		{"-n", l.Director, "link", "set", DirClientIf, "up"},
		{"-n", l.Director, "link", "set", DirServerIf, "up"},
		{"-n", l.Server, "link", "set", ServerIf, "up"},
		{"-n", l.Client, "route", "add", "default", "via", l.DirClientAddr.String()},
		{"-n", l.Server, "route", "add", "default", "via", l.DirServAddr.String()},
	}
	for _, s := range steps {
		if err := run("ip", s...); err != nil {
			return l, err
		}
	}
	// Until the kernel's link watcher has attached a veth's qdisc every
	// frame is dropped, and the first SYN of a measurement would wait out a
	// retransmission timeout.
	for ns, links := range map[string][]string{l.Client: {ClientIf}, l.Director: {DirClientIf, DirServerIf}, l.Server: {ServerIf}} {
		if err := topo.WaitUpNamed(ns, 10*time.Second, links...); err != nil {
			return l, err
		}
	}
	// The LVS-DR "ARP problem" (§5.6): without arp_announce=2 the server
	// asks for its gateway with the VIP as sender address, which the
	// director (owning the VIP too) ignores, and DR replies never leave.
	for _, kv := range [][2]string{{"net.ipv4.conf.all.arp_ignore", "1"}, {"net.ipv4.conf.all.arp_announce", "2"}} {
		if err := Sysctl(l.Server, kv[0], kv[1]); err != nil {
			return l, err
		}
	}
	// The connection-rate load opens thousands of connections a second
	// whose client ends wait in TIME_WAIT: give it every port, and let it
	// reuse them.
	for _, kv := range [][2]string{{"net.ipv4.ip_local_port_range", "1024 65535"}, {"net.ipv4.tcp_tw_reuse", "1"}} {
		if err := Sysctl(l.Client, kv[0], kv[1]); err != nil {
			return l, err
		}
	}
	// nginx closes each connection first, so TIME_WAIT is the server's;
	// a client port coming round again meets it, and its SYN waits out a
	// retransmission timeout (a second of wrk's 16 connections idle).
	// The server keeps no TIME_WAIT, so the load measures the path.
	if err := Sysctl(l.Server, "net.ipv4.tcp_max_tw_buckets", "0"); err != nil {
		return l, err
	}
	for _, m := range []struct {
		ns, dev string
		mac     *header.MAC
	}{{l.Client, ClientIf, &l.ClientMAC}, {l.Director, DirClientIf, &l.DirClientMAC}, {l.Director, DirServerIf, &l.DirServMAC}, {l.Server, ServerIf, &l.ServerMAC}} {
		if *m.mac, err = linkMAC(m.ns, m.dev); err != nil {
			return l, err
		}
	}
	return l, nil
}

// NetnsPath returns the path of a namespace of the lab.
func NetnsPath(ns string) string { return filepath.Join("/run/netns", ns) }

// Close deletes the lab's namespaces (and with them every link).
func (l *Lab) Close() error {
	var errs []error
	for _, ns := range []string{l.Client, l.Director, l.Server} {
		if _, err := os.Stat(NetnsPath(ns)); err == nil {
			errs = append(errs, run("ip", "netns", "del", ns))
		}
	}
	return errors.Join(errs...)
}

// Leftovers lists what of the lab still exists: namespaces under /run/netns
// and links in the calling namespace whose names start with the lab's name.
func (l *Lab) Leftovers() ([]string, error) {
	var left []string
	ents, err := os.ReadDir("/run/netns")
	if err != nil && !os.IsNotExist(err) {
		return nil, err
	}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), l.Name) {
			left = append(left, "netns "+e.Name())
		}
	}
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, err
	}
	for _, i := range ifs {
		if strings.HasPrefix(i.Name, l.Name) {
			left = append(left, "link "+i.Name)
		}
	}
	return left, nil
}

// Cmd returns a command that runs in namespace ns.
func Cmd(ns string, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", ns}, args...)...)
}

// Sysctl sets a sysctl inside namespace ns.
func Sysctl(ns, key, value string) error {
	return run("ip", "netns", "exec", ns, "sysctl", "-qw", key+"="+value)
}

// Nft loads an nftables ruleset into namespace ns.
func Nft(ns, ruleset string) error {
	c := Cmd(ns, "nft", "-f", "-")
	c.Stdin = strings.NewReader(ruleset)
	if out, err := c.CombinedOutput(); err != nil {
		return fmt.Errorf("nft in %s: %w: %s", ns, err, out)
	}
	return nil
}

func run(name string, args ...string) error {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

func linkMAC(ns, dev string) (header.MAC, error) {
	out, err := exec.Command("ip", "-n", ns, "-j", "link", "show", "dev", dev).Output()
	if err != nil {
		return header.MAC{}, fmt.Errorf("ip link show %s in %s: %w", dev, ns, err)
	}
	var links []struct {
		Address string `json:"address"`
	}
	if err := json.Unmarshal(out, &links); err != nil || len(links) != 1 {
		return header.MAC{}, fmt.Errorf("ip link show %s in %s: unexpected output %q", dev, ns, out)
	}
	hw, err := net.ParseMAC(links[0].Address)
	if err != nil || len(hw) != 6 {
		return header.MAC{}, fmt.Errorf("link %s in %s: bad MAC %q", dev, ns, links[0].Address)
	}
	return header.MAC(hw), nil
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(d time.Duration, cond func() bool) bool {
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		if cond() {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return cond()
}
