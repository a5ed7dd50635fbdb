package main

import (
	"github.com/spf13/cobra"

	"github.com/lvslab/lvslab/topo"
)

func init() {
	c := &cobra.Command{
		Use:   "exec LAB NODE -- CMD [ARG…]",
		Short: "Run any program inside a node of a lab (curl, tcpdump, nginx, ip …)",
		Long: `exec enters the node's network namespace and replaces itself with CMD, so the
program's terminal, signals and exit status are its own. LVSLAB_LAB and LVSLAB_NODE are
set in its environment. Programs still running in a lab are ended by lvslab down.`,
		Args: cobra.MinimumNArgs(3),
	}
	c.Flags().SetInterspersed(false)
	runDir := runDirFlag(c)
	c.RunE = func(cmd *cobra.Command, args []string) error {
		info, err := topo.Find(*runDir, args[0])
		if err != nil {
			return err
		}
		argv := args[2:]
		if argv[0] == "--" {
			argv = argv[1:]
		}
		return topo.Exec(info, args[1], argv)
	}
	root.AddCommand(c)
}
