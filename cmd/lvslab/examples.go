package main

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/lvslab/lvslab/scenarios"
)

func init() {
	var show bool
	c := &cobra.Command{
		Use:   "examples [NAME]",
		Short: "List the embedded example scenarios, or print one",
		Long: `examples lists the scenarios built into lvslab; lvslab run NAME runs one and
lvslab examples NAME prints it (a starting point for your own).`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			w := cmd.OutOrStdout()
			if len(args) == 1 {
				b, err := scenarios.Examples.ReadFile("examples/" + args[0] + ".yaml")
				if err != nil {
					return fmt.Errorf("no example %q (lvslab examples lists them)", args[0])
				}
				_, err = w.Write(b)
				return err
			}
			entries, err := scenarios.Examples.ReadDir("examples")
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
			defer tw.Flush()
			for _, e := range entries {
				name := strings.TrimSuffix(e.Name(), ".yaml")
				s, err := scenarios.LoadExample(name)
				if err != nil {
					return err
				}
				desc := strings.Join(strings.Fields(s.Description), " ")
				if r := []rune(desc); !show && len(r) > 90 {
					desc = string(r[:87]) + "..."
				}
				fmt.Fprintf(tw, "%s\t%s\n", name, desc)
			}
			return nil
		},
	}
	c.Flags().BoolVar(&show, "long", false, "print whole descriptions")
	root.AddCommand(c)
}
