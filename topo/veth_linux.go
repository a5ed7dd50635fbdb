package topo

import (
	"errors"
	"strings"

	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Interface indexes are chosen, not looked up: a node's i-th interface is
// ifindex 2+i in its namespace (lo is 1), and its fabric end has an index
// derived from node and interface. Knowing them saves a lookup per link.
func nodeIfIndex(j int) int      { return 2 + j }
func fabricIfIndex(i, j int) int { return 1000 + i*MaxNodeInterfaces + j }

// vethMaker creates a node's veth pair with one RTM_NEWLINK in the fabric:
// the fabric end enslaved to its bridge and up, the node end moved into the
// node's namespace with its name, index and MTU (it cannot be brought up in
// the same request: veth refuses to open before its peer is wired).
// vishvananda/netlink spends three more requests on the same (two lookups
// and enslaving); each takes the kernel's RTNL lock, which serializes
// parallel builders.
type vethMaker struct {
	sock *nl.NetlinkSocket
}

func newVethMaker(fabric interface{ Fd() uintptr }) (*vethMaker, error) {
	cur, err := netns.Get()
	if err != nil {
		return nil, err
	}
	defer cur.Close()
	s, err := nl.GetNetlinkSocketAt(netns.NsHandle(fabric.Fd()), cur, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, err
	}
	return &vethMaker{sock: s}, nil
}

func (v *vethMaker) close() { v.sock.Close() }

func (v *vethMaker) addVeth(name string, index, master, mtu int, peer string, peerIndex, peerNS int) error {
	req := nl.NewNetlinkRequest(unix.RTM_NEWLINK, unix.NLM_F_CREATE|unix.NLM_F_EXCL|unix.NLM_F_ACK)
	req.Sockets = map[int]*nl.SocketHandle{unix.NETLINK_ROUTE: {Socket: v.sock}}
	msg := nl.NewIfInfomsg(unix.AF_UNSPEC)
	msg.Index = int32(index)
	msg.Flags, msg.Change = unix.IFF_UP, unix.IFF_UP
	req.AddData(msg)
	req.AddData(nl.NewRtAttr(unix.IFLA_IFNAME, nl.ZeroTerminated(name)))
	req.AddData(nl.NewRtAttr(unix.IFLA_MTU, nl.Uint32Attr(uint32(mtu))))
	req.AddData(nl.NewRtAttr(unix.IFLA_GROUP, nl.Uint32Attr(vethGroup)))
	if master != 0 {
		req.AddData(nl.NewRtAttr(unix.IFLA_MASTER, nl.Uint32Attr(uint32(master))))
	}
	info := nl.NewRtAttr(unix.IFLA_LINKINFO, nil)
	info.AddRtAttr(nl.IFLA_INFO_KIND, nl.NonZeroTerminated("veth"))
	data := info.AddRtAttr(nl.IFLA_INFO_DATA, nil)
	p := data.AddRtAttr(nl.VETH_INFO_PEER, nil)
	pm := nl.NewIfInfomsgChild(p, unix.AF_UNSPEC)
	pm.Index = int32(peerIndex)
	p.AddRtAttr(unix.IFLA_IFNAME, nl.ZeroTerminated(peer))
	p.AddRtAttr(unix.IFLA_MTU, nl.Uint32Attr(uint32(mtu)))
	p.AddRtAttr(unix.IFLA_NET_NS_FD, nl.Uint32Attr(uint32(peerNS)))
	req.AddData(info)
	_, err := req.Execute(unix.NETLINK_ROUTE, 0)
	return err
}

// readyLinks counts the fabric's veth ends (names starting with prefix)
// that can carry frames. A port joins its bridge at once, but a veth end
// created before its peer starts without carrier, and its queueing
// discipline stays "noop" (dropping every frame) until the kernel's link
// watcher, which runs asynchronously, sees the carrier and marks the link up.
func (v *vethMaker) readyLinks(prefix string) (int, error) {
	req := nl.NewNetlinkRequest(unix.RTM_GETLINK, unix.NLM_F_DUMP)
	req.Sockets = map[int]*nl.SocketHandle{unix.NETLINK_ROUTE: {Socket: v.sock}}
	req.AddData(nl.NewIfInfomsg(unix.AF_UNSPEC))
	msgs, err := req.Execute(unix.NETLINK_ROUTE, unix.RTM_NEWLINK)
	if errors.Is(err, nl.ErrDumpInterrupted) {
		return 0, nil // links changed during the dump: count again later
	}
	if err != nil {
		return 0, err
	}
	n := 0
	for _, m := range msgs {
		if len(m) < unix.SizeofIfInfomsg {
			continue
		}
		attrs, err := nl.ParseRouteAttr(m[unix.SizeofIfInfomsg:])
		if err != nil {
			continue
		}
		var name, qdisc string
		var oper byte
		for _, a := range attrs {
			switch a.Attr.Type {
			case unix.IFLA_IFNAME:
				name = unix.ByteSliceToString(a.Value)
			case unix.IFLA_QDISC:
				qdisc = unix.ByteSliceToString(a.Value)
			case unix.IFLA_OPERSTATE:
				if len(a.Value) == 1 {
					oper = a.Value[0]
				}
			}
		}
		if strings.HasPrefix(name, prefix) && oper == ifOperUp && qdisc != "" && qdisc != "noop" {
			n++
		}
	}
	return n, nil
}

// ifOperUp is IF_OPER_UP of linux/if.h.
const ifOperUp = 6

// vethGroup is the device group of every veth end in a fabric, so teardown
// removes all pairs with one request (ip link delete group), which the kernel
// does in a single batch.
const vethGroup = 1

// deleteVeths removes every veth pair of the fabric, both ends, and returns
// once the kernel has unregistered them.
func (v *vethMaker) deleteVeths() error {
	req := nl.NewNetlinkRequest(unix.RTM_DELLINK, unix.NLM_F_ACK)
	req.Sockets = map[int]*nl.SocketHandle{unix.NETLINK_ROUTE: {Socket: v.sock}}
	req.AddData(nl.NewIfInfomsg(unix.AF_UNSPEC))
	req.AddData(nl.NewRtAttr(unix.IFLA_GROUP, nl.Uint32Attr(vethGroup)))
	_, err := req.Execute(unix.NETLINK_ROUTE, 0)
	if errors.Is(err, unix.ENODEV) {
		// rtnl_group_dellink: no link in the group, e.g. a build killed
		// before its first veth pair.
		return nil
	}
	return err
}
