package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/lvslab/lvslab/dataplane/engine"
)

func init() {
	var lab, director, listen string
	var asJSON bool
	var runDir *string
	c := &cobra.Command{
		Use:   "stats --lab LAB [--director NODE] [--json | --listen ADDR:PORT]",
		Short: "Print a running director's engine counters and drops by reason",
		Long: `stats prints what the lab's director engine counted since it started: frames
received and forwarded, ICMP relayed and sent, packets segmented and fragmented,
frames by how they parsed, IPv4 reassembly, every drop by reason, and its packet
sockets per interface as the kernel counts them (drops: frames the kernel had no
room for). IPVS's own counters per service and real server are ipvsadm's
(lvslab ipvsadm --lab LAB -L -n --stats).

With --listen it serves them instead, read at every scrape, for Prometheus at
http://ADDR:PORT/metrics (lvslab_director_packets_total, _reassembly_total,
_drops_total{reason}, _socket_packets_total, _socket_drops_total, _up) until
interrupted; it runs in the root namespace, so listen on loopback.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if lab == "" {
				return &exitStatus{2, fmt.Errorf("--lab: required (lvslab ls lists the labs)")}
			}
			socket, node, err := directorSocket(*runDir, lab, director)
			if err != nil {
				return err
			}
			if listen != "" {
				return serveMetrics(cmd, listen, socket, node)
			}
			s, err := engine.ReadStats(socket)
			if err != nil {
				return fmt.Errorf("director %s of lab %s: %w", node, lab, err)
			}
			if asJSON {
				e := json.NewEncoder(cmd.OutOrStdout())
				e.SetIndent("", "  ")
				return e.Encode(s)
			}
			return s.WriteText(cmd.OutOrStdout())
		},
	}
	runDir = runDirFlag(c)
	c.Flags().StringVar(&lab, "lab", "", "the lab (its name or id; lvslab ls lists them)")
	c.Flags().StringVar(&director, "director", "", "the director node, when the lab has several")
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON (the run report's director key)")
	c.Flags().StringVar(&listen, "listen", "", "serve Prometheus metrics on ADDR:PORT (/metrics) instead of printing")
	c.MarkFlagsMutuallyExclusive("json", "listen")
	root.AddCommand(c)
}

// serveMetrics serves the director's statistics on addr until interrupted,
// saying where first.
func serveMetrics(cmd *cobra.Command, addr, socket, director string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return &exitStatus{2, fmt.Errorf("--listen: %w", err)}
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", engine.MetricsHandler(socket, director))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	fmt.Fprintf(cmd.OutOrStdout(), "serving director %s's metrics on http://%s/metrics\n", director, l.Addr())
	if err := srv.Serve(l); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
