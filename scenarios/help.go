package scenarios

// FormatHelp is `lvslab help scenario`: every section and field of a
// scenario file.
const FormatHelp = `A scenario file describes a lab and what happens to it (YAML; unknown keys are errors,
every error names file:line:col and the object). lvslab examples prints complete ones.

name, description       the report's title and text
networks[]              L2 segments: name, subnet (10.1.1.0/24), mtu (default 1500)
nodes[]                 name, role (client | director | realserver | router),
                        interfaces[] {network, address}, routes[] {to, via}, sysctls {key: value},
                        source_addresses (client: "A-B", A, a CIDR, comma-separated),
                        server (realserver): kind http | tcp | udp | command, port or ports (a
                        list: one server on several ports, for port-0 and fwmark services; default
                        every port its services send to), response_bytes, service_time (2ms,
                        uniform:1ms-3ms, exp:2ms), max_concurrency, max_queue, command (kind command),
                        nftables (an nft -f ruleset loaded into the node before it starts: on a
                        director the marking rules of an ipvsadm block's -f services)
services[]              vip (192.168.1.110:80; :0 for all ports), protocol (tcp | udp | sctp) or fwmark,
                        fwmark N: vip is an address or a list of them ([192.168.1.110, 192.168.1.111]),
                        ports ([80, 443, 8000-8010]) and protocol narrow the marking rule the runner
                        loads into the director (ip daddr {…} tcp dport {…} meta mark set N),
                        scheduler (rr wrr lc wlc lblc lblcr dh sh sed nq fo ovf mh twos; default wlc),
                        persistence {timeout: 360s, netmask: 255.255.255.255},
                        realservers[] {node, port, weight (0-65535, default 1),
                        forward (nat | dr | tun, default dr), standby (out of the table until add:)},
                        health_check {kind: tcp | http | command, port, path, status, digest (http:
                        the body's MD5, 32 hex digits, as keepalived's HTTP_GET digest), command,
                        interval (1s), timeout (500ms), rise (1), fall (1), quiescent (true: weight 0;
                        false: removed), sorry_server (a realserver node put in with weight 1
                        while every real server is down)}
ipvsadm                 ipvsadm-restore lines (-A, -a, -e …) loaded after the services
load[]                  phases, in order unless at: places them: name, from (client nodes, comma-
                        separated; default the first client), target (VIP:PORT, or several, a port
                        alone reusing the address before it: "192.168.1.110:80,443"; default the
                        first service; the rate is split evenly over clients and targets, the
                        concurrency is each one's), kind (http | tcp | udp), rate (2000/s: open loop)
                        or concurrency (closed loop), arrival (constant | poisson),
                        new_connection_per_request (default true), request_bytes, duration (default
                        10s), timeout, path, at
faults[]                at (10s, or "phase NAME"), for (restore after), and one action:
                        kill | restore | hang | refuse | reset: NODE; slow: NODE with delay;
                        error: NODE with status; weight: {node, value}; add | remove: NODE;
                        link: NODE with down: true, or any of loss: 5%, rate: 10mbit and
                        delay: 20ms with jitter: 5ms (each way, uniform; netem where the kernel has
                        it, which reorders packets closer than the jitter, else lvslab's userspace
                        delay line, which reorders only with reorder: true); kill: DIRECTOR
expect[]                over the report: errors < 1%, p99 < 50ms, throughput_rps > 100, jain > 0.95,
                        share(rs1) within 0.05 of weight_share(rs1), connections(rs2) > 0,
                        detected(rs2) < 1s, recovered(rs2) < 3s, persistence_violations == 0 (client
                        addresses that reached more than one real server; needs source_addresses).
                        "… during NAME" reads one load phase's measurements instead of all phases'.
                        weight_share(RS) is RS's weight over its service's, as the table stood at
                        the phase's start (after faults and health checks: a quiescent server
                        weighs 0, a sorry server counts only while it is in).
                        Metrics: errors error_rate requests throughput_rps throughput_bps p50 p90 p99
                        p999 max mean jain weighted_jain max_share_error share() weight_share()
                        connections() persistence_violations servers_per_client detected()
                        recovered(); comparisons < <= > >= == !=

lvslab run FILE|NAME runs it (exit 0 only if every expectation held), lvslab validate FILE checks it,
lvslab validate --schema prints a JSON Schema for editors.`
