package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/lvslab/lvslab/scenarios"
)

func init() {
	var schema bool
	c := &cobra.Command{
		Use:   "validate FILE|NAME | validate --schema",
		Short: "Parse and check a scenario without building anything",
		Long: `validate reads a scenario and reports every problem at once, each at its place
(file:line:col and the object): unknown fields, values that do not parse, a lab that
cannot be wired (DR needs the director on the real servers' segment, NAT needs their
route back through the director), VIPs that collide with node addresses, weights out
of range, unknown schedulers, persistence netmasks that are not netmasks, ipvsadm
lines the director would refuse, load phases, faults and expectations that do not
make sense. Warnings (such as TUN without MTU headroom) do not fail it.

--schema prints a JSON Schema of the format for editors (yaml-language-server:
# yaml-language-server: $schema=lvslab-scenario.json). lvslab help scenario
describes every field.`,
		Args: cobra.RangeArgs(0, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if schema {
				_, err := cmd.OutOrStdout().Write(scenarios.JSONSchema())
				return err
			}
			if len(args) != 1 {
				return &exitStatus{2, fmt.Errorf("validate needs a scenario FILE or example NAME")}
			}
			s, err := loadScenario(args[0])
			if err != nil {
				return &exitStatus{1, err}
			}
			w := cmd.OutOrStdout()
			for _, warn := range s.Warnings() {
				fmt.Fprintf(cmd.ErrOrStderr(), "warning: %s\n", warn)
			}
			fmt.Fprintf(w, "%s: ok (%d nodes, %d services, %d load phases, %d faults, %d expectations)\n",
				s.Name, len(s.Nodes), len(s.Services), len(s.Load), len(s.Faults), len(s.Expect))
			return nil
		},
	}
	c.Flags().BoolVar(&schema, "schema", false, "print the scenario format's JSON Schema")
	root.AddCommand(c)

	// lvslab help scenario: the format, from the example every user starts from.
	root.AddCommand(&cobra.Command{
		Use:   "scenario",
		Short: "The scenario file format (lvslab help scenario)",
		Long:  scenarios.FormatHelp,
	})
}
