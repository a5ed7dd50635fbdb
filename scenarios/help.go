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
                        server (realserver): kind http | tcp | udp | command, port (default: its
                        services' port), response_bytes, service_time (2ms, uniform:1ms-3ms,
                        exp:2ms), max_concurrency, max_queue, command (kind command),
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
                        health_check {kind: tcp | http | command, port, path, status, command,
                        interval (1s), timeout (500ms), rise (1), fall (1), quiescent (true: weight 0;
                        false: removed), sorry_server (a realserver node put in with weight 1
                        while every real server is down)}
ipvsadm                 ipvsadm-restore lines (-A, -a, -e …) loaded after the services
load[]                  phases, in order unless at: places them: name, from (client nodes, comma-
                        separated; default the first client), target (default the first service),
                        kind (http | tcp | udp), rate (2000/s: open loop) or concurrency (closed loop),
                        arrival (constant | poisson), new_connection_per_request (default true),
                        request_bytes, duration (default 10s), timeout, path, at
faults[]                at (10s, or "phase NAME"), for (restore after), and one action:
                        kill | restore | hang | refuse | reset: NODE; slow: NODE with delay;
                        error: NODE with status; weight: {node, value}; add | remove: NODE;
                        link: NODE with down: true, loss: 5% or rate: 10mbit; kill: DIRECTOR
expect[]                over the report: errors < 1%, p99 < 50ms, throughput_rps > 100, jain > 0.95,
                        share(rs1) within 0.05 of weight_share(rs1), connections(rs2) > 0,
                        detected(rs2) < 1s. Metrics: errors error_rate requests throughput_rps
                        throughput_bps p50 p90 p99 p999 max mean jain weighted_jain max_share_error
                        share() weight_share() connections() detected(); comparisons < <= > >= == !=

lvslab run FILE|NAME runs it (exit 0 only if every expectation held), lvslab validate FILE checks it,
lvslab validate --schema prints a JSON Schema for editors.`
