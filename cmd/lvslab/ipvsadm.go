package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/lvslab/lvslab/dataplane/engine"
	"github.com/lvslab/lvslab/topo"
)

func init() {
	c := &cobra.Command{
		Use:   "ipvsadm --lab LAB [--director NODE] ARGS…",
		Short: "Run ipvsadm against a lab's running director",
		Long: `ipvsadm runs the ipvsadm program (1.31's grammar, messages, listings and exit
statuses) inside the lab's director agent, against its live connection table and
counters. Options after --lab/--director are ipvsadm's own, e.g.

  lvslab ipvsadm --lab classic-nat -L -n --stats
  lvslab ipvsadm --lab classic-nat -e -t 192.168.1.110:80 -r 10.1.1.2:80 -m -w 0
  lvslab ipvsadm --lab classic-nat -S -n | lvslab ipvsadm --lab other -R`,
		DisableFlagParsing: true,
	}
	runDir := topo.RunDir()
	c.RunE = func(cmd *cobra.Command, args []string) error {
		var lab, director string
		for len(args) > 0 {
			flag, value, rest, ok := leadingFlag(args)
			if !ok {
				break
			}
			switch flag {
			case "--lab":
				lab = value
			case "--director":
				director = value
			case "--run-dir":
				runDir = value
			}
			args = rest
		}
		if lab == "" && len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
			return cmd.Help() // with --lab, ipvsadm's own help
		}
		if lab == "" {
			return &exitStatus{2, fmt.Errorf("--lab: required (lvslab ls lists the labs)")}
		}
		socket, node, err := directorSocket(runDir, lab, director)
		if err != nil {
			return err
		}
		code, err := engine.Ipvsadm(socket, args, os.Stdin, cmd.OutOrStdout(), cmd.ErrOrStderr())
		if err != nil {
			return fmt.Errorf("director %s of lab %s: %w", node, lab, err)
		}
		if code != 0 {
			os.Exit(code) // ipvsadm printed its own message
		}
		return nil
	}
	root.AddCommand(c)
}

// leadingFlag splits one of our own flags (--lab X, --lab=X, --director,
// --run-dir) off the front of args; anything else starts ipvsadm's.
func leadingFlag(args []string) (flag, value string, rest []string, ok bool) {
	for _, f := range []string{"--lab", "--director", "--run-dir"} {
		switch {
		case args[0] == f && len(args) > 1:
			return f, args[1], args[2:], true
		case len(args[0]) > len(f) && args[0][:len(f)+1] == f+"=":
			return f, args[0][len(f)+1:], args[1:], true
		}
	}
	return "", "", args, false
}

// directorSocket is engine.DirectorSocket with a usage error (exit status
// 2, naming --director) when the lab has several directors and none is named.
func directorSocket(runDir, lab, director string) (socket, node string, err error) {
	socket, node, err = engine.DirectorSocket(runDir, lab, director)
	if errors.Is(err, engine.ErrSeveralDirectors) {
		return "", "", flagError("director", err)
	}
	return socket, node, err
}
