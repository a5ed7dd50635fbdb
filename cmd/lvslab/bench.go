package main

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/lvslab/lvslab/dataplane/fwdbench"
)

func init() {
	var (
		out        string
		duration   time.Duration
		dataplanes []string
	)
	cfg := fwdbench.DefaultConfig
	cmd := &cobra.Command{
		Use:   "bench --out DIR [--duration D] [--rounds N]",
		Short: "Compare the director with kernel routing and nftables DNAT in one lab; write DIR/bench.json",
		Long: `bench builds a client — director — server lab and measures, under the same loads,
kernel routing with no balancer (kernel-route), kernel nftables DNAT balancing with
numgen (nft-dnat), the lvslab director in NAT, DR and TUN (lvslab-nat, lvslab-dr,
lvslab-tun: the engine with a virtual service, its connection table and rr scheduler;
the TUN server decapsulates in userspace, in this process) and the static AF_PACKET
forwarder (afpacket-*-static: the packet I/O alone, no connection table).

Metrics: tcp_bps (bulk TCP, one iperf3 stream from the client), tcp_bps_response (the
same from the server: DR and TUN responses skip the balancer, here routed by the director
namespace's kernel, so compare them with kernel-route), pps (small UDP datagrams at an
unlimited offered rate: saturation), pps_fixed (the same at --fixed-pps, below
saturation: loss there means a starved worker), cps (new TCP connections per second,
wrk against nginx, one request per connection). Each row carries its loss and the CPU
of the machine, of the forwarder (this process) and of the load generator, in cores;
a director row also its CPU per packet it forwarded (director µs/pkt), the measure that
holds on a shared machine.

Dataplanes run interleaved --rounds times; each row is the median. The table prints
each value's ratio to kernel-route and nft-dnat measured in the same run.
Needs root and iperf3, wrk, nginx, nft, ip.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return flagError("out", errors.New("required: the folder for bench.json"))
			}
			if duration%time.Second != 0 {
				return flagError("duration", fmt.Errorf("want whole seconds (iperf3 counts seconds), got %v", duration))
			}
			cfg.Seconds = int(duration / time.Second)
			cfg.Dataplanes = dataplanes
			if err := cfg.Check(); err != nil {
				var ce *fwdbench.ConfigError
				if errors.As(err, &ce) {
					field := map[string]string{"seconds": "duration"}[ce.Field]
					if field == "" {
						field = ce.Field
					}
					return flagError(field, ce.Err)
				}
				return err
			}
			if os.Geteuid() != 0 {
				return errors.New("bench needs root: it builds network namespaces")
			}
			if err := fwdbench.CheckPrograms(); err != nil {
				return err
			}
			rep, err := fwdbench.Run(cfg, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%d cpus, kernel %s, %s, %s\n%s", rep.Machine.CPUs, rep.Machine.Kernel,
				rep.Machine.Go, rep.Machine.Features, rep.Table())
			path, err := rep.Write(out)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "report: %s\n", path)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&out, "out", "", "folder for bench.json (created)")
	fl.DurationVar(&duration, "duration", time.Duration(cfg.Seconds)*time.Second, "each measurement's length, whole seconds")
	fl.IntVar(&cfg.Rounds, "rounds", cfg.Rounds, "interleaved rounds; each row is the median")
	fl.IntVar(&cfg.FixedPPS, "fixed-pps", cfg.FixedPPS, "the fixed UDP load below saturation, packets per second")
	fl.IntVar(&cfg.UDPLen, "udp-len", cfg.UDPLen, "UDP payload bytes of the packet-rate loads")
	fl.StringSliceVar(&dataplanes, "dataplanes", nil, fmt.Sprintf("dataplanes to compare, in order (default %v; known %v)",
		fwdbench.Dataplanes, fwdbench.AllDataplanes))
	root.AddCommand(cmd)
}
