package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/lvslab/lvslab/topo"
)

func init() {
	c := &cobra.Command{
		Use:   "down LAB",
		Short: "Remove a lab (by ID or scenario name): its agents, namespaces, pins and run folder",
		Args:  cobra.ExactArgs(1),
	}
	runDir := runDirFlag(c)
	c.RunE = func(cmd *cobra.Command, args []string) error {
		info, err := topo.Find(*runDir, args[0])
		if err != nil {
			return err
		}
		if err := topo.Destroy(*runDir, info.ID); err != nil {
			return err
		}
		fmt.Fprintf(cmd.OutOrStdout(), "lab %s (%s) removed\n", info.ID, info.Name)
		return nil
	}
	root.AddCommand(c)
}
