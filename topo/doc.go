// Package topo owns the lab: the value that describes clients, directors,
// routers and real servers wired into L2 segments (Lab: pure data, printed,
// diffed and validated without root), the per-mode real-server setup derived
// from the virtual services (ApplyServices), building and destroying that
// value on Linux (Build, Instance.Destroy, Destroy, DestroyAll), and the
// kernel features it relies on (Probe). It never runs traffic; agents do.
//
// # Building
//
// Build creates, per lab, a fabric namespace holding one bridge per network
// and one namespace per node, wired by veth pairs; nothing is ever created
// in the caller's namespace, so the root namespace gains no route or link.
// Namespaces are held by file descriptor; Options.Pin also bind-mounts them
// under the run folder so the lab outlives its builder (lvslab up). Inside a
// node, interfaces are named as on a machine (eth0, eth1, …); every object
// outside a node carries the lab ID, which starts with "lvs".
//
//	in, err := topo.Build(ctx, lab, topo.Options{})
//	defer in.Destroy()
//	in.Do("rs1", func() error { … })             // code on a thread inside rs1
//	in.Output("director", "nft", "list", "ruleset") // any program inside a node
//	a, err := in.StartAgent("director", "dataplane", args…)
//
// # Agents
//
// A long-running program in a node is this binary re-executed there
// (package agent): a kind registers itself with agent.Register, StartAgent
// runs `lvslab agent --lab ID --node NAME --dir DIR KIND ARGS…` inside the
// node, waits for agent.Env.Ready, logs to DIR/logs/NODE.KIND.log and
// records the process, so teardown stops it even after the runner died. An
// agent may serve a control socket (Env.Listen, Agent.Dial) in the lab's run
// folder (mode 0700). Test binaries call agent.MainIfAgent in TestMain.
// FabricNode names the fabric for StartAgent, Do and NetNS: a link
// impairment (topo/impair) splices a relay in between a node's fabric port
// (FabricPorts) and its bridge there.
//
// # The director's kernel
//
// In every director, table netdev "lvslab" (DropTable) drops, at ingress of
// every interface, the IPv4 packets of its virtual services: set "services"
// (DropServices: address . protocol . port) and set "allports" (DropAllPorts:
// address . protocol, the port-0 services), and every IP fragment to a
// service's address and protocol (set "fragments", DropFrags: the
// dataplane reassembles them). Netdev ingress runs after the
// packet taps: an AF_PACKET socket bound to ETH_P_ALL sees each packet, the
// kernel never handles one the dataplane took (no RST, no ICMP); the rest of
// the traffic to a VIP gets the director's own answers (echo replies, RSTs).
// ARP is untouched. ip_forward is 0. A dataplane keeps the sets in step with
// its services with AddDropServices and DelDropServices (nsfd -1 inside its
// own namespace).
//
// # Ownership and teardown
//
// Each lab's run folder (RunDir()/ID, mode 0700) holds owner.log, an
// append-only registry written before each object can outlive its creator:
// namespace inodes, pins, agents. Teardown kills every process living in a
// recorded namespace, unpins, deletes every veth pair in one batch (a device
// group delete in the fabric), releases the namespaces and checks that no
// veth of the lab is left (waiting, if need be, for the kernel's asynchronous
// namespace teardown to remove them).
// Destroy and DestroyAll do the same from the registry alone, after the
// runner was killed.
package topo
