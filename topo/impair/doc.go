// Package impair puts delay and jitter on a lab node's links.
//
// Where the kernel has netem, a netem qdisc goes on both ends of each of
// the node's veth pairs (the node's interface for what it sends, the
// fabric end for what it receives), so every packet waits the delay once
// per crossing, as on a long cable. Elsewhere (this project's CI kernels
// have no netem) a userspace delay line does the same without stalling
// the link.
//
// # The userspace delay line
//
// topo builds one bridge per network in the lab's fabric namespace; a
// node's interface is one end of a veth pair whose other end (its fabric
// port) is a bridge port. For the duration of a fault, Start adds a second
// veth pair in the fabric, one end a port of the same bridge and the other
// free, starts a relay there (an agent: this binary re-executed in the
// fabric namespace), and then takes the node's fabric port off the bridge.
// Frames now cross the relay both ways: node ⇄ fabric port ⇄ relay ⇄ new
// pair ⇄ bridge. Stop puts the fabric port back on its bridge, ends the
// relay (it sends what still waits at once) and removes the pair (the
// bridge forgets the MACs it learned there). Both switches leave a moment
// (a netlink request at the start, a process exit at the end) in which the
// node's frames cross twice, directly and as a delayed copy, rather than
// not at all: TCP shrugs off a duplicate, while a lost SYN costs a second.
//
// The relay reads and writes with dataplane/packetio's AF_PACKET sockets
// with PACKET_VNET_HDR both ways, so a 64 KB GSO frame from veth crosses
// whole with its checksum-offload state, in batches (recvmmsg/sendmmsg),
// from one poll loop on one thread; a timerfd in the same poll set wakes
// it when the next frame is due. Each direction is a Line: a time-ordered
// queue in a byte ring allocated once, bounded like netem (1000 frames by
// default, and 16 MB), counting what it drops. Each frame waits Delay plus
// a uniform jitter in [-Jitter, +Jitter] drawn from a source seeded by the
// run's seed — but never leaves before the frame ahead of it: unlike
// netem with jitter, the line does not reorder, so TCP sees a slower link,
// not a reordering one. Config.Reorder (reorder: true in a scenario) lets
// frames overtake as netem does, at the cost of a heap of ring slots.
//
// A crashed run leaves nothing that lvslab destroy --all does not remove:
// the pair's names carry the lab ID, its bridge end is in the fabric's
// veth group (deleted with the lab's veths), and the relay lives in the
// fabric namespace, whose processes teardown kills.
package impair
