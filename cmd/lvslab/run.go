package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/lvslab/lvslab/reports"
	"github.com/lvslab/lvslab/scenarios"
)

func init() {
	var (
		out   string
		seed  uint64
		scale float64
	)
	c := &cobra.Command{
		Use:   "run FILE|NAME [--out DIR] [--seed N]",
		Short: "Build a scenario's lab, run its load and faults, write the report, tear it down",
		Long: `run builds the lab a scenario describes, starts the director with its services (and its
ipvsadm block) and the built-in real servers, runs the load phases from the client nodes
with the faults at their times, reads the director's counters, writes report.json,
report.md and report.html into --out, and destroys the lab — also on Ctrl-C and on any
failure. It exits 0 only when every expectation held (1 when one failed).

NAME runs an embedded example (lvslab examples lists them). --duration-scale (or
$LVSLAB_DURATION_SCALE) multiplies every duration of the timeline: 0.2 runs a 20 s
scenario in 4 s.`,
		Args: cobra.ExactArgs(1),
	}
	runDir := runDirFlag(c)
	c.Flags().StringVar(&out, "out", "", "folder for the report set (default: ./lvslab-run-NAME)")
	c.Flags().Uint64Var(&seed, "seed", 1, "seed of every random source (poisson arrivals)")
	c.Flags().Float64Var(&scale, "duration-scale", 0, "multiply every duration of the timeline (default $LVSLAB_DURATION_SCALE or 1)")
	c.RunE = func(cmd *cobra.Command, args []string) error {
		s, src, err := loadScenarioSource(args[0])
		if err != nil {
			return &exitStatus{2, err}
		}
		if scale == 0 {
			if scale, err = scenarios.ScaleFromEnv(); err != nil {
				return &exitStatus{2, err}
			}
		} else if scale < 0 {
			return flagError("duration-scale", fmt.Errorf("%g is negative", scale))
		}
		if err := requireRoot(); err != nil {
			return err
		}
		if out == "" {
			out = "lvslab-run-" + s.Name
		}
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		w := cmd.OutOrStdout()
		opt := scenarios.RunOptions{Scale: scale, Seed: seed, RunDir: *runDir, Progress: w, Source: src,
			Manifest: map[string]string{"lvslab": version, "command": "lvslab " + strings.Join(os.Args[1:], " ")}}
		stopBar := func() {}
		if f, ok := w.(*os.File); ok && isTerminal(f) {
			bar := newTimelineBar(f)
			opt.Progress, opt.TimelineStarted, stopBar = bar, bar.start, bar.stop
		}
		rep, err := s.Run(ctx, opt)
		stopBar()
		if errors.Is(err, context.Canceled) {
			return &exitStatus{130, errors.New("interrupted; the lab was destroyed")}
		}
		if err != nil {
			return err
		}
		if _, err := reports.WriteAll(out, rep); err != nil {
			return err
		}
		if l := rep.Load; l != nil {
			fmt.Fprintf(w, "%d requests, %d errors (%.3g%%), %.1f rps, p50 %.3f ms, p99 %.3f ms\n",
				l.Requests, l.Errors, 100*l.ErrorRate, l.ThroughputRPS, l.LatencyMS.P50, l.LatencyMS.P99)
		}
		for _, e := range rep.Expectations {
			verdict := "ok  "
			if !e.Passed {
				verdict = "FAIL"
			}
			fmt.Fprintf(w, "%s %s (measured %.4g) %s\n", verdict, e.Text, e.Value, e.Detail)
		}
		fmt.Fprintf(w, "report: %s/report.md, %s/report.html\n", out, out)
		if !rep.Passed {
			return &exitStatus{1, errors.New("an expectation failed")}
		}
		return nil
	}
	root.AddCommand(c)
}

// loadScenarioSource is loadScenario that also returns the file's bytes
// (hashed into the run manifest).
func loadScenarioSource(arg string) (*scenarios.Scenario, []byte, error) {
	s, err := loadScenario(arg)
	if err != nil {
		return nil, nil, err
	}
	b, err := os.ReadFile(arg)
	if err != nil {
		b, err = scenarios.Examples.ReadFile("examples/" + arg + ".yaml")
	}
	return s, b, err
}
