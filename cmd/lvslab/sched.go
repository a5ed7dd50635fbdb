package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/lvslab/lvslab/scheduler"
	"github.com/lvslab/lvslab/scheduler/picks"
)

func init() {
	var (
		cfg                 picks.Config
		dests, flows        []string
		conn, kernelProfile string
		seed                uint64
		asJSON              bool
	)
	cmd := &cobra.Command{
		Use:   "sched --scheduler S --dest ADDR:PORT[,w=N][,x=UPPER][,y=LOWER]... [flags]",
		Short: "Run one IPVS scheduler outside any lab and print its picks",
		Long: `sched builds one virtual service with the kernel's scheduler semantics, adds the
destinations in the order given (as ipvsadm -a would, so the kernel's list is the
reverse), and schedules --picks new connections from the --flow clients in turn.
Each line is: pick number, client source address (or -), destination or none.

--conn says what each picked connection does next: stays open and counts as
active (the default), closes and counts as inactive, or is forgotten. A --flow
without source port uses the client's next ephemeral port, counting from 10000.`,
		Example: `  lvslab sched --scheduler wrr --dest 10.1.1.2:80,w=4 --dest 10.1.1.3:80,w=3 --picks 9
  lvslab sched --scheduler sh --sched-flags sh-port --dest 10.1.1.2:80 --dest 10.1.1.3:80 \
      --flow 192.168.1.1:40000 --flow 192.168.1.1:40001 --picks 2
  lvslab sched --scheduler lblc --dest 10.1.1.2:80 --flow 192.168.1.1>10.0.0.100:80 --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			usage := func(flag, value string, err error) error {
				return &exitStatus{2, fmt.Errorf("--%s %q: %w", flag, value, err)}
			}
			for _, s := range dests {
				d, err := picks.ParseDest(s)
				if err != nil {
					return usage("dest", s, err)
				}
				cfg.Dests = append(cfg.Dests, d)
			}
			for _, s := range flows {
				f, err := picks.ParseFlow(s)
				if err != nil {
					return usage("flow", s, err)
				}
				cfg.Flows = append(cfg.Flows, f)
			}
			var err error
			if cfg.Conn, err = picks.ParseEnding(conn); err != nil {
				return usage("conn", conn, err)
			}
			p, ok := scheduler.ParseProfile(kernelProfile)
			if !ok {
				return usage("kernel-profile", kernelProfile, fmt.Errorf("not one of current, 6.1-stock"))
			}
			cfg.Profile = p
			if cmd.Flags().Changed("seed") {
				cfg.Seed = &seed
			}
			res, err := picks.Run(cfg)
			if err != nil {
				return &exitStatus{2, err}
			}
			if asJSON {
				return res.WriteJSON(cmd.OutOrStdout())
			}
			return res.WriteText(cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Scheduler, "scheduler", "wlc", "scheduler: rr wrr lc wlc lblc lblcr dh sh sed nq fo ovf mh twos")
	f.StringArrayVar(&dests, "dest", nil, "destination ADDR:PORT[,w=N][,x=UPPER][,y=LOWER], repeated in ipvsadm -a order (weight 1 by default)")
	f.StringVar(&cfg.Flags, "sched-flags", "", "scheduler flags as ipvsadm -b: sh-fallback,sh-port / mh-fallback,mh-port / flag-1..3")
	f.StringArrayVar(&flows, "flow", nil, "client flow SRC[:PORT][>DST[:PORT]], repeated; used in turn (default: one flow without addresses)")
	f.StringVar(&conn, "conn", "active", "what each picked connection does: active, inactive or none")
	f.IntVar(&cfg.Picks, "picks", 10, "number of new connections to schedule")
	f.Uint64Var(&seed, "seed", 0, "seed of twos' random source (default: a fixed generator)")
	f.BoolVar(&asJSON, "json", false, "print the picks and final dest counters as JSON")
	f.StringVar(&kernelProfile, "kernel-profile", "current", "kernel bookkeeping: current (overhead 257×active+inactive) or 6.1-stock (256×)")
	root.AddCommand(cmd)
}
