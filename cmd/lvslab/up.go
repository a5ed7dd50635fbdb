package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/lvslab/lvslab/topo"
)

func init() {
	c := &cobra.Command{
		Use:   "up FILE|EXAMPLE",
		Short: "Build a scenario's lab and leave it running (lvslab down removes it)",
		Long: `up builds the lab a scenario describes — namespaces, bridges, veth pairs, addresses,
routes, the NAT/DR/TUN real-server setup derived from its services — starts the director
with its table and the real servers' servers (built-in ones where the scenario names none),
pins its namespaces under the run folder and exits, leaving the lab for lvslab exec, curl,
tcpdump and lvslab ipvsadm. It prints the lab ID.`,
		Args: cobra.ExactArgs(1),
	}
	runDir := runDirFlag(c)
	c.RunE = func(cmd *cobra.Command, args []string) error {
		s, err := loadScenario(args[0])
		if err != nil {
			return err
		}
		if err := requireRoot(); err != nil {
			return err
		}
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		f := topo.Probe()
		lab, err := s.BuildLab()
		if err != nil {
			return err
		}
		in, err := topo.Build(ctx, lab, topo.Options{RunDir: *runDir, Pin: true, Detached: true, Features: &f})
		if err != nil {
			return err
		}
		for _, n := range in.Lab.Nodes {
			var err error
			switch n.Role {
			case topo.Director:
				_, _, _, err = s.StartDirector(in, n.Name)
			case topo.RealServer:
				_, _, _, err = s.StartRealServer(in, n.Name)
			default:
				err = s.LoadNFTables(in, n.Name)
			}
			if err != nil {
				in.Destroy()
				return err
			}
		}
		out := cmd.OutOrStdout()
		fmt.Fprintf(out, "lab %s (%s) is up: %d nodes, %d networks\n", in.ID, in.Lab.Name, len(in.Lab.Nodes), len(in.Lab.Networks))
		fmt.Fprintf(out, "features: %s (TUN decapsulation: %s)\n\n", f, f.Decap())
		fmt.Fprint(out, in.Lab)
		fmt.Fprintf(out, "\nlvslab ipvsadm --lab %s -L -n\nlvslab exec %s %s -- ip addr\nlvslab down %s\n", in.ID, in.ID, in.Lab.Nodes[0].Name, in.ID)
		return nil
	}
	root.AddCommand(c)
}
