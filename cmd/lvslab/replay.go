package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/lvslab/lvslab/dataplane/replay"
	"github.com/lvslab/lvslab/scheduler"
)

func init() {
	var profile string
	cmd := &cobra.Command{
		Use:   "replay FILE.scn",
		Short: "Replay a kipvs scenario against the director core on a virtual clock",
		Long: `replay runs a kipvs scenario (ipvsadm commands, connections, sleeps, sysctls,
nft mark rules) against lvslab's director core and prints what kipvs prints for
the real kernel: one decision line per connection and the final ipvsadm listings.
Time is virtual: a scenario of minutes replays in milliseconds.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, ok := scheduler.ParseProfile(profile)
			if !ok {
				return &exitStatus{2, fmt.Errorf("--kernel-profile: %q is not current or 6.1-stock", profile)}
			}
			text, err := os.ReadFile(args[0])
			if err != nil {
				return &exitStatus{2, err}
			}
			sc, err := replay.Parse(args[0], string(text))
			if err != nil {
				return &exitStatus{2, err}
			}
			return replay.Run(sc, replay.Options{Profile: p}, cmd.OutOrStdout())
		},
	}
	cmd.Flags().StringVar(&profile, "kernel-profile", "current", "kernel bookkeeping rules: current or 6.1-stock")
	root.AddCommand(cmd)
}
