package scenarios

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/lvslab/lvslab/loadgen"
	"github.com/lvslab/lvslab/loadgen/realserver"
	"github.com/lvslab/lvslab/loadgen/wire"
	"github.com/lvslab/lvslab/reports/metrics"
	"github.com/lvslab/lvslab/topo/agent"
)

// The agent kinds a run starts in the lab's nodes.
const (
	RealServerAgent = "realserver" // a built-in real server; faults switch its failure mode
	LoadAgent       = "loadgen"    // a client's load generator; each request on its socket is one phase
)

func init() {
	agent.Register(RealServerAgent, runRealServer)
	agent.Register(LoadAgent, runLoad)
}

// faultRequest switches a real server agent's failure mode.
type faultRequest struct {
	Fault string `json:"fault"`
}

type agentReply struct {
	Error  string          `json:"error,omitempty"`
	Result *metrics.Result `json:"result,omitempty"`
	Events json.RawMessage `json:"events,omitempty"` // health check transitions
}

// runRealServer is `lvslab agent … realserver --listen ADDR:PORT
// [--ports P,P…] --kind K --id NAME [--response-bytes N] [--service-time D]
// [--max-concurrency N] [--max-queue N]`.
func runRealServer(ctx context.Context, env *agent.Env, args []string) error {
	fs := flag.NewFlagSet(RealServerAgent, flag.ContinueOnError)
	listen := fs.String("listen", "", "ADDR:PORT")
	ports := fs.String("ports", "", "further ports on the listen address, comma-separated")
	kind := fs.String("kind", "http", "http, tcp or udp")
	id := fs.String("id", env.Node, "the name responses carry")
	respBytes := fs.Int("response-bytes", 0, "response size")
	serviceTime := fs.String("service-time", "", "service time distribution")
	maxConc := fs.Int("max-concurrency", 0, "requests served at once")
	maxQueue := fs.Int("max-queue", 0, "requests waiting beyond max-concurrency")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg := realserver.Config{ID: *id, ResponseBytes: *respBytes, MaxConcurrency: *maxConc, MaxQueue: *maxQueue}
	var err error
	if cfg.Listen, err = netip.ParseAddrPort(*listen); err != nil {
		return fmt.Errorf("--listen: %w", err)
	}
	for p := range strings.SplitSeq(*ports, ",") {
		if p == "" {
			continue
		}
		n, err := strconv.ParseUint(p, 10, 16)
		if err != nil {
			return fmt.Errorf("--ports: %q is not a port", p)
		}
		cfg.Ports = append(cfg.Ports, uint16(n))
	}
	if cfg.Kind, err = wire.ParseKind(*kind); err != nil {
		return err
	}
	if cfg.ServiceTime, err = realserver.ParseDist(*serviceTime); err != nil {
		return err
	}
	srv, err := realserver.Listen(cfg)
	if err != nil {
		return err
	}
	defer srv.Close()
	return serveControl(ctx, env, func(c net.Conn) agentReply {
		var req faultRequest
		if err := json.NewDecoder(c).Decode(&req); err != nil {
			return agentReply{Error: err.Error()}
		}
		f, err := realserver.ParseFault(req.Fault)
		if err == nil {
			err = srv.SetFault(f)
		}
		if err != nil {
			return agentReply{Error: err.Error()}
		}
		return agentReply{}
	})
}

// runLoad is `lvslab agent … loadgen`: each connection to its socket sends
// one loadgen.Config as JSON and gets the phase's metrics.Result back.
func runLoad(ctx context.Context, env *agent.Env, _ []string) error {
	return serveControl(ctx, env, func(c net.Conn) agentReply {
		var req loadRequest
		if err := json.NewDecoder(c).Decode(&req); err != nil {
			return agentReply{Error: err.Error()}
		}
		res, err := loadgen.Run(ctx, req.config())
		if err != nil {
			return agentReply{Error: err.Error()}
		}
		return agentReply{Result: res}
	})
}

// loadRequest is the part of a loadgen.Config that travels to a load
// agent (the rest, such as callbacks, stays in the process).
type loadRequest struct {
	Target       netip.AddrPort
	Kind         wire.Kind
	Rate         float64
	Arrival      loadgen.Arrival
	Concurrency  int
	Duration     time.Duration
	KeepAlive    bool
	Sources      []netip.Addr
	RequestBytes int
	Timeout      time.Duration
	Path         string
	Workers      int
	Seed         uint64
}

func newLoadRequest(c loadgen.Config) loadRequest {
	return loadRequest{Target: c.Target, Kind: c.Kind, Rate: c.Rate, Arrival: c.Arrival, Concurrency: c.Concurrency,
		Duration: c.Duration, KeepAlive: c.KeepAlive, Sources: c.Sources, RequestBytes: c.RequestBytes,
		Timeout: c.Timeout, Path: c.Path, Workers: c.Workers, Seed: c.Seed}
}

func (r loadRequest) config() loadgen.Config {
	return loadgen.Config{Target: r.Target, Kind: r.Kind, Rate: r.Rate, Arrival: r.Arrival, Concurrency: r.Concurrency,
		Duration: r.Duration, KeepAlive: r.KeepAlive, Sources: r.Sources, RequestBytes: r.RequestBytes,
		Timeout: r.Timeout, Path: r.Path, Workers: r.Workers, Seed: r.Seed}
}

// serveControl answers one request per connection on the agent's socket
// until ctx ends.
func serveControl(ctx context.Context, env *agent.Env, handle func(net.Conn) agentReply) error {
	l, err := env.Listen()
	if err != nil {
		return err
	}
	go func() {
		<-ctx.Done()
		l.Close()
	}()
	env.Ready()
	for {
		c, err := l.Accept()
		if err != nil {
			return ctx.Err()
		}
		go func() {
			defer c.Close()
			json.NewEncoder(c).Encode(handle(c))
		}()
	}
}

// callAgent sends req to an agent's socket and decodes its reply.
func callAgent(ctx context.Context, socket string, req any) (agentReply, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", socket)
	if err != nil {
		return agentReply{}, err
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	if err := json.NewEncoder(c).Encode(req); err != nil {
		return agentReply{}, err
	}
	var rep agentReply
	if err := json.NewDecoder(c).Decode(&rep); err != nil {
		return agentReply{}, err
	}
	if rep.Error != "" {
		return rep, fmt.Errorf("%s", rep.Error)
	}
	return rep, nil
}
