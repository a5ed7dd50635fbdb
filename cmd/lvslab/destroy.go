package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/lvslab/lvslab/topo"
)

func init() {
	c := &cobra.Command{
		Use:   "destroy --all",
		Short: "Remove every lab whose runner is gone, also after a crash or SIGKILL",
		Long: `destroy --all reads each lab's ownership registry under the run folder and removes
what it records — processes inside the lab's namespaces, pinned namespaces, the run
folder — and waits for the kernel to tear the namespaces down. It never removes by
name pattern. Labs whose runner still runs are left to it.`,
		Args: cobra.NoArgs,
	}
	runDir := runDirFlag(c)
	all := c.Flags().Bool("all", false, "remove every lab (required)")
	c.RunE = func(cmd *cobra.Command, _ []string) error {
		if !*all {
			return errors.New("say --all to remove every lab (lvslab down LAB removes one)")
		}
		done, err := topo.DestroyAll(*runDir)
		for _, id := range done {
			fmt.Fprintf(cmd.OutOrStdout(), "removed %s\n", id)
		}
		return err
	}
	root.AddCommand(c)
}
