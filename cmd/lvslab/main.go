// Command lvslab builds LVS labs in network namespaces, runs its own userspace
// director in them, drives them with load and faults, and writes reports.
//
// This package only wires the library packages to the command line: every
// command lives in a file of its own and registers itself on the root command.
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

// root is the top of the command tree; each command file adds itself in init.
var root = &cobra.Command{
	Use:   "lvslab",
	Short: "LVS (Linux Virtual Server) lab: NAT, DR and TUN topologies with a userspace director",
	Long: `lvslab emulates clients, directors and real servers in Linux network namespaces,
runs a userspace IPVS director with every kernel scheduler, drives it with load and
faults, and reports throughput, latency and fairness.`,
	SilenceUsage:  true,
	SilenceErrors: true,
}

func main() {
	if err := root.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "lvslab:", err)
		os.Exit(exitCode(err))
	}
}

// exitStatus lets a command choose its process exit status (ipvsadm, for
// example, distinguishes 1, 2 and 255); any other error exits with 1.
type exitStatus struct {
	code int
	err  error
}

func (e *exitStatus) Error() string { return e.err.Error() }
func (e *exitStatus) Unwrap() error { return e.err }

func exitCode(err error) int {
	if e, ok := err.(*exitStatus); ok {
		return e.code
	}
	return 1
}
