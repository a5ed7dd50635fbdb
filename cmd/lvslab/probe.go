package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/lvslab/lvslab/topo"
)

func init() {
	root.AddCommand(&cobra.Command{
		Use:   "probe",
		Short: "Detect the kernel features labs use (IPVS, ipip, netem, tbf, XDP, nftables) and the fallbacks chosen",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := requireRoot(); err != nil {
				return err
			}
			fmt.Fprint(cmd.OutOrStdout(), topo.Probe().Describe())
			return nil
		},
	})
}
