package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/lvslab/lvslab/topo/agent"
)

func init() {
	root.AddCommand(&cobra.Command{
		Use:                "agent --lab ID --node NAME --dir DIR KIND [ARG…]",
		Short:              "Run an agent inside a node (started by lvslab itself)",
		Hidden:             true,
		DisableFlagParsing: true,
		RunE: func(_ *cobra.Command, args []string) error {
			if code := agent.Main(args); code != 0 {
				return &exitStatus{code, fmt.Errorf("agent exited with status %d", code)}
			}
			return nil
		},
	})
}
