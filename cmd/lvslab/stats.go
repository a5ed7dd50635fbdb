package main

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/lvslab/lvslab/dataplane/engine"
)

func init() {
	var lab, director string
	var asJSON bool
	var runDir *string
	c := &cobra.Command{
		Use:   "stats --lab LAB [--director NODE] [--json]",
		Short: "Print a running director's engine counters and drops by reason",
		Long: `stats prints what the lab's director engine counted since it started: frames
received and forwarded, ICMP relayed and sent, packets segmented and fragmented,
frames by how they parsed, IPv4 reassembly, every drop by reason, and its packet
sockets per interface as the kernel counts them (drops: frames the kernel had no
room for). IPVS's own counters per service and real server are ipvsadm's
(lvslab ipvsadm --lab LAB -L -n --stats).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if lab == "" {
				return &exitStatus{2, fmt.Errorf("--lab: required (lvslab ls lists the labs)")}
			}
			socket, node, err := engine.DirectorSocket(*runDir, lab, director)
			if err != nil {
				return err
			}
			s, err := engine.ReadStats(socket)
			if err != nil {
				return fmt.Errorf("director %s of lab %s: %w", node, lab, err)
			}
			if asJSON {
				e := json.NewEncoder(cmd.OutOrStdout())
				e.SetIndent("", "  ")
				return e.Encode(s)
			}
			return s.WriteText(cmd.OutOrStdout())
		},
	}
	runDir = runDirFlag(c)
	c.Flags().StringVar(&lab, "lab", "", "the lab (its name or id; lvslab ls lists them)")
	c.Flags().StringVar(&director, "director", "", "the director node, when the lab has several")
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON (the run report's director key)")
	root.AddCommand(c)
}
