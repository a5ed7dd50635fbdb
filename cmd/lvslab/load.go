package main

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/lvslab/lvslab/loadgen"
	"github.com/lvslab/lvslab/loadgen/wire"
	"github.com/lvslab/lvslab/reports"
)

func init() {
	var (
		target, kind, rate, arrival, sourceRange, out, name, path, host, header string
		concurrency, requestBytes, workers                                      int
		duration, timeout                                                       time.Duration
		keepalive                                                               bool
		weights                                                                 []string
		seed                                                                    uint64
	)
	cmd := &cobra.Command{
		Use:   "load --target ADDR:PORT --kind http|tcp|udp (--rate N/s | --concurrency N) --duration D --out DIR",
		Short: "Run a load against a service and write the report set (json, md, html, plots)",
		Long: `load sends requests to ADDR:PORT and writes report.json, report.md, report.html and
PNG plots into --out.

--rate runs an open loop: requests leave on schedule whatever the server does, and
latency counts from the intended send time, so a stall shows in the tail. --concurrency
alone runs a closed loop of N clients. Every request opens a new connection (LVS
schedules connections) unless --keepalive. Responses that name their real server (lvslab
serve, or any server setting --header) are counted per real server; give --weight
NAME=W for each to measure the split against the weights.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg := loadgen.Config{Concurrency: concurrency, Duration: duration, KeepAlive: keepalive, RequestBytes: requestBytes,
				Timeout: timeout, Workers: workers, Path: path, Host: host, ServerHeader: header, Seed: seed}
			var err error
			if cfg.Target, err = netip.ParseAddrPort(target); err != nil || cfg.Target.Port() == 0 {
				return flagError("target", fmt.Errorf("want ADDR:PORT with a non-zero port, got %q", target))
			}
			if cfg.Kind, err = wire.ParseKind(kind); err != nil {
				return flagError("kind", err)
			}
			if rate != "" {
				if cfg.Rate, err = loadgen.ParseRate(rate); err != nil {
					return flagError("rate", err)
				}
			} else if concurrency <= 0 {
				return flagError("rate", fmt.Errorf("give --rate N/s (open loop) or --concurrency N (closed loop)"))
			}
			switch arrival {
			case "constant":
			case "poisson":
				cfg.Arrival = loadgen.Poisson
			default:
				return flagError("arrival", fmt.Errorf("unknown arrival %q (want constant or poisson)", arrival))
			}
			if sourceRange != "" {
				if cfg.Sources, err = loadgen.ParseRange(sourceRange); err != nil {
					return flagError("source-range", err)
				}
			}
			w, err := parseWeights(weights)
			if err != nil {
				return flagError("weight", err)
			}
			if out == "" {
				return flagError("out", fmt.Errorf("required: the folder for the report set"))
			}
			if err := cfg.Check(); err != nil {
				var ce *loadgen.ConfigError
				if errors.As(err, &ce) {
					return flagError(ce.Field, ce.Err)
				}
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			res, err := loadgen.Run(ctx, cfg)
			if err != nil {
				return err
			}
			r := reports.New(name)
			err = r.AddLoad(reports.Phase{
				Name: "load", Target: cfg.Target.String(), Kind: cfg.Kind.String(), Rate: cfg.Rate,
				Poisson: cfg.Arrival == loadgen.Poisson, Concurrency: concurrency, KeepAlive: keepalive,
				Sources: len(cfg.Sources), Duration: duration, Weights: w,
			}, res)
			if err != nil {
				return err
			}
			host, _ := os.Hostname()
			r.Manifest = map[string]string{"command": "lvslab " + strings.Join(os.Args[1:], " "), "lvslab": version, "host": host}
			r.Finish()
			if _, err := reports.WriteAll(out, r); err != nil {
				return err
			}
			l := r.Load
			fmt.Fprintf(cmd.OutOrStdout(), "%d requests, %d errors (%.3g%%), %.1f rps, p50 %.3f ms, p99 %.3f ms, max %.3f ms\n",
				l.Requests, l.Errors, 100*l.ErrorRate, l.ThroughputRPS, l.LatencyMS.P50, l.LatencyMS.P99, l.LatencyMS.Max)
			if len(l.ErrorsByClass) > 0 {
				classes := make([]string, 0, len(l.ErrorsByClass))
				for c, n := range l.ErrorsByClass {
					classes = append(classes, fmt.Sprintf("%s %d", c, n))
				}
				sort.Strings(classes)
				fmt.Fprintf(cmd.OutOrStdout(), "  errors: %s\n", strings.Join(classes, ", "))
			}
			for _, s := range l.Realservers {
				id := s.ID
				if id == "" {
					id = "(unnamed)"
				}
				fmt.Fprintf(cmd.OutOrStdout(), "  %-12s %8d connections %8d requests  share %.4f (weight share %.4f)\n", id, s.Connections, s.Requests, s.Share, s.WeightShare)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "report: %s/report.html\n", out)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&target, "target", "", "service address, ADDR:PORT (a VIP, or a server directly)")
	fl.StringVar(&kind, "kind", "http", "protocol: http, tcp or udp")
	fl.StringVar(&rate, "rate", "", "open loop: requests per time unit, such as 2000/s")
	fl.StringVar(&arrival, "arrival", "constant", "open-loop arrivals: constant or poisson")
	fl.IntVar(&concurrency, "concurrency", 0, "closed loop: clients; open loop: most requests in flight (default 10000)")
	fl.DurationVar(&duration, "duration", 10*time.Second, "how long to send")
	fl.DurationVar(&timeout, "timeout", loadgen.DefaultTimeout, "per request, from its intended send time")
	fl.StringVar(&sourceRange, "source-range", "", "client addresses to bind in turn, A-B (they must be local)")
	fl.BoolVar(&keepalive, "keepalive", false, "reuse connections (default: a new connection per request)")
	fl.IntVar(&requestBytes, "request-bytes", 0, "tcp/udp: request size; http: POST body size (0: GET)")
	fl.IntVar(&workers, "workers", 0, "event loops, one thread each (default: one per CPU)")
	fl.StringVar(&path, "path", "/", "http request path")
	fl.StringVar(&host, "host", "", "http Host header (default: the target)")
	fl.StringVar(&header, "header", wire.ServerHeader, "http response header naming the real server")
	fl.StringArrayVar(&weights, "weight", nil, "NAME=W: a real server's weight, to compare its share against (repeatable)")
	fl.StringVar(&out, "out", "", "folder for report.json, report.md, report.html and plots")
	fl.StringVar(&name, "name", "lvslab load", "title of the report")
	fl.Uint64Var(&seed, "seed", 1, "seed for poisson arrivals")
	root.AddCommand(cmd)
}

func parseWeights(args []string) (map[string]float64, error) {
	if len(args) == 0 {
		return nil, nil
	}
	w := map[string]float64{}
	for _, a := range args {
		name, v, ok := strings.Cut(a, "=")
		f, err := strconv.ParseFloat(v, 64)
		if !ok || name == "" || err != nil || f < 0 {
			return nil, fmt.Errorf("%q: want NAME=WEIGHT with a weight >= 0", a)
		}
		w[name] = f
	}
	return w, nil
}
