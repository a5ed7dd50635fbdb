package impair

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/lvslab/lvslab/topo/agent"
)

// AgentKind is the relay's agent kind; it runs in the lab's fabric.
const AgentKind = "delayline"

func init() { agent.Register(AgentKind, runAgent) }

// statsEvery is how often a relay rewrites its stats file.
const statsEvery = time.Second

// relayArgs are the agent's arguments for one relay.
func relayArgs(nodeSide, networkSide, statsFile string, cfg Config) []string {
	return []string{"--node-side", nodeSide, "--network-side", networkSide, "--stats", statsFile,
		"--delay", cfg.Delay.String(), "--jitter", cfg.Jitter.String(),
		"--limit", fmt.Sprint(cfg.limit()), "--bytes", fmt.Sprint(cfg.bytes()), "--seed", fmt.Sprint(cfg.Seed),
		"--reorder=" + fmt.Sprint(cfg.Reorder)}
}

func runAgent(ctx context.Context, env *agent.Env, args []string) error {
	fs := flag.NewFlagSet(AgentKind, flag.ContinueOnError)
	nodeSide := fs.String("node-side", "", "the node's fabric port")
	networkSide := fs.String("network-side", "", "the free end of the pair on the bridge")
	statsFile := fs.String("stats", "", "file the relay's counters are written to (JSON)")
	var cfg Config
	fs.DurationVar(&cfg.Delay, "delay", 0, "delay of each frame")
	fs.DurationVar(&cfg.Jitter, "jitter", 0, "uniform jitter around the delay")
	fs.IntVar(&cfg.Limit, "limit", DefaultLimit, "frames waiting per direction")
	fs.IntVar(&cfg.Bytes, "bytes", DefaultBytes, "bytes waiting per direction")
	fs.Uint64Var(&cfg.Seed, "seed", 1, "seed of the jitter")
	fs.BoolVar(&cfg.Reorder, "reorder", false, "let a frame that drew a shorter delay overtake")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *nodeSide == "" || *networkSide == "" || *statsFile == "" {
		return fmt.Errorf("%s: --node-side, --network-side and --stats are required", AgentKind)
	}
	r, err := OpenRelay(*nodeSide, *networkSide, cfg)
	if err != nil {
		return err
	}
	defer r.Close()
	done := make(chan error, 1)
	go func() { done <- r.Run() }()
	env.Ready()
	tick := time.NewTicker(statsEvery)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			if err := writeStats(*statsFile, r.Stats()); err != nil {
				return err
			}
		case err := <-done:
			return fmt.Errorf("%s: relay stopped: %v", AgentKind, err)
		case <-ctx.Done():
			r.Stop()
			err := <-done
			if werr := writeStats(*statsFile, r.Stats()); err == nil {
				err = werr
			}
			if err != nil {
				return err
			}
			return ctx.Err()
		}
	}
}

// writeStats replaces the stats file atomically.
func writeStats(path string, s Stats) error {
	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path))
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// readStats reads a relay's stats file.
func readStats(path string) (Stats, error) {
	var s Stats
	b, err := os.ReadFile(path)
	if err != nil {
		return s, err
	}
	return s, json.Unmarshal(b, &s)
}
