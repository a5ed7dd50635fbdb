package main

import (
	"errors"
	"io/fs"
	"os"

	"github.com/spf13/cobra"

	"github.com/lvslab/lvslab/scenarios"
	"github.com/lvslab/lvslab/topo"
)

// runDirFlag adds --run-dir (default: $LVSLAB_RUN_DIR or /run/lvslab).
func runDirFlag(c *cobra.Command) *string {
	return c.Flags().String("run-dir", topo.RunDir(), "folder holding every lab's ownership registry")
}

// loadScenario reads FILE, or the embedded example called FILE when no such
// file exists.
func loadScenario(arg string) (*scenarios.Scenario, error) {
	s, err := scenarios.Load(arg)
	if errors.Is(err, fs.ErrNotExist) {
		// Not a file: an embedded example of that name, whose own errors
		// (if it has any) are the ones to report.
		ex, exErr := scenarios.LoadExample(arg)
		if !errors.Is(exErr, fs.ErrNotExist) {
			return ex, exErr
		}
	}
	return s, err
}

func requireRoot() error {
	if os.Geteuid() != 0 {
		return errors.New("building labs needs root (network namespaces, netlink, nftables)")
	}
	return nil
}
