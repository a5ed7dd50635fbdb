package main

import (
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/lvslab/lvslab/topo"
)

func init() {
	c := &cobra.Command{
		Use:   "ls",
		Short: "List the labs that exist, their nodes and agents",
		Args:  cobra.NoArgs,
	}
	runDir := runDirFlag(c)
	c.RunE = func(cmd *cobra.Command, _ []string) error {
		labs, err := topo.List(*runDir)
		if err != nil {
			return err
		}
		w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "LAB\tNAME\tSTATE\tAGE\tNODES\tAGENTS")
		for _, l := range labs {
			state := l.State
			switch {
			case l.RunnerAlive:
				state += fmt.Sprintf(" (held by pid %d)", l.Runner)
			case l.State != "up":
				state += " (runner gone: lvslab destroy --all)"
			}
			names := make([]string, len(l.Nodes))
			for i, n := range l.Nodes {
				names[i] = n.Name
			}
			var agents []string
			for _, a := range l.Agents {
				s := fmt.Sprintf("%s/%s:%d", a.Node, a.Kind, a.PID)
				if !a.Alive {
					s += "(exited)"
				}
				agents = append(agents, s)
			}
			age := "-"
			if !l.Created.IsZero() {
				age = time.Since(l.Created).Round(time.Second).String()
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", l.ID, l.Name, state, age, strings.Join(names, ","), strings.Join(agents, ","))
		}
		return w.Flush()
	}
	root.AddCommand(c)
}
