package main

import (
	"fmt"
	"net/netip"
	"os/signal"
	"slices"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/lvslab/lvslab/loadgen/realserver"
	"github.com/lvslab/lvslab/loadgen/wire"
)

func init() {
	var (
		listen, kind, id, serviceTime, fault, header string
		responseBytes, maxConcurrency, maxQueue      int
		ports                                        []uint
	)
	cmd := &cobra.Command{
		Use:   "serve --listen ADDR:PORT [--ports P,P…] --kind http|tcp|udp --id NAME",
		Short: "Run a built-in real server that names itself in every response",
		Long: `serve runs lvslab's built-in real server until interrupted. Every response names
the server (the X-Real-Server header over http, a fixed 40-byte prefix over tcp
and udp), so 'lvslab load' can count what each real server behind a balancer served.
With --ports it is one server on several ports of the listen address (one name,
capacity and fault), as the real server of a port-0 or fwmark service.

Service times: 2ms (fixed), uniform:1ms-3ms, exp:2ms.
Faults (--fault): none, hang, slow:200ms, reset, error[:STATUS], refuse.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg := realserver.Config{ID: id, ResponseBytes: responseBytes, MaxConcurrency: maxConcurrency, MaxQueue: maxQueue, Header: header}
			var err error
			if cfg.Listen, err = netip.ParseAddrPort(listen); err != nil {
				return flagError("listen", fmt.Errorf("want ADDR:PORT: %w", err))
			}
			for _, p := range ports {
				switch {
				case p == 0 || p > 65535:
					return flagError("ports", fmt.Errorf("%d is not a port", p))
				case p == uint(cfg.Listen.Port()) || slices.Contains(cfg.Ports, uint16(p)):
					return flagError("ports", fmt.Errorf("port %d is given twice", p))
				}
				cfg.Ports = append(cfg.Ports, uint16(p))
			}
			if cfg.Kind, err = wire.ParseKind(kind); err != nil {
				return flagError("kind", err)
			}
			switch {
			case id == "":
				return flagError("id", fmt.Errorf("required: the name responses carry"))
			case cfg.Kind != wire.HTTP && len(id) > wire.MaxIDLen:
				return flagError("id", fmt.Errorf("%q is longer than %d bytes", id, wire.MaxIDLen))
			case responseBytes < 0:
				return flagError("response-bytes", fmt.Errorf("%d is negative", responseBytes))
			case cfg.Kind == wire.UDP && responseBytes > realserver.MaxUDPResponse:
				return flagError("response-bytes", fmt.Errorf("%d does not fit a udp datagram (max %d)", responseBytes, realserver.MaxUDPResponse))
			case maxConcurrency < 0:
				return flagError("max-concurrency", fmt.Errorf("%d is negative", maxConcurrency))
			case maxQueue < 0:
				return flagError("max-queue", fmt.Errorf("%d is negative", maxQueue))
			}
			if cfg.ServiceTime, err = realserver.ParseDist(serviceTime); err != nil {
				return flagError("service-time", err)
			}
			f, err := realserver.ParseFault(fault)
			if err != nil {
				return flagError("fault", err)
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			return realserver.Serve(ctx, cfg, func(s *realserver.Server) {
				if f.Mode != realserver.Healthy {
					if err := s.SetFault(f); err != nil {
						fmt.Fprintln(cmd.ErrOrStderr(), "lvslab serve:", err)
					}
				}
				fmt.Fprintf(cmd.OutOrStdout(), "serving %s %s as %s\n", cfg.Kind, addrList(s.Addrs()), id)
			})
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&listen, "listen", "", "address and port to listen on (ADDR:PORT)")
	fl.UintSliceVar(&ports, "ports", nil, "further ports to serve on the listen address (comma-separated)")
	fl.StringVar(&kind, "kind", "http", "protocol: http, tcp or udp")
	fl.StringVar(&id, "id", "", "the server's name, carried in every response")
	fl.IntVar(&responseBytes, "response-bytes", 0, "http: body size; tcp/udp: whole response (at least the 40-byte prefix)")
	fl.StringVar(&serviceTime, "service-time", "", "time to serve one request: 2ms, uniform:1ms-3ms or exp:2ms")
	fl.IntVar(&maxConcurrency, "max-concurrency", 0, "requests served at once; the rest queue (0: no limit)")
	fl.IntVar(&maxQueue, "max-queue", 0, "requests that may wait beyond max-concurrency before 503s (0: no limit)")
	fl.StringVar(&header, "header", wire.ServerHeader, "http response header that names the server")
	fl.StringVar(&fault, "fault", "none", "start in a failure mode: hang, slow:D, reset, error[:STATUS], refuse")
	cmd.MarkFlagRequired("listen")
	cmd.MarkFlagRequired("id")
	root.AddCommand(cmd)
}

// flagError names the flag a bad value came from; it exits with status 2,
// like a usage error.
func flagError(flag string, err error) error {
	return &exitStatus{code: 2, err: fmt.Errorf("--%s: %w", flag, err)}
}

// addrList writes addrs as "10.0.0.2:80, 10.0.0.2:443".
func addrList(addrs []netip.AddrPort) string {
	s := make([]string, len(addrs))
	for i, a := range addrs {
		s[i] = a.String()
	}
	return strings.Join(s, ", ")
}
