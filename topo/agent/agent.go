// Package agent is the process model of a lab: every long-running program a
// node needs (the director's dataplane, a load generator, a userspace
// decapsulator) is the same binary re-executed inside the node's network
// namespace as `lvslab agent --lab ID --node NAME KIND ARGS…`, because a Go
// program cannot move a running process between namespaces thread by thread.
//
// A package that provides an agent kind registers it with Register in an
// init function; the `lvslab agent` command (and MainIfAgent in test binaries)
// dispatches to it with Main. topo.Instance.StartAgent starts one and waits
// until it calls Env.Ready.
package agent

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"sync"
	"syscall"
)

// EnvMarker is set in an agent's environment; MainIfAgent looks for it.
const EnvMarker = "LVSLAB_AGENT"

// readyFD is the descriptor an agent reports readiness on: "ok\n", or the
// error that stopped it before it was ready.
const readyFD = 3

// Func runs an agent until ctx ends (SIGTERM or SIGINT). It calls env.Ready
// once it serves; an error returned before that is reported to the starter.
type Func func(ctx context.Context, env *Env, args []string) error

var (
	mu    sync.Mutex
	kinds = map[string]Func{}
)

// Register makes an agent kind available to Main.
func Register(kind string, f Func) {
	mu.Lock()
	defer mu.Unlock()
	if _, dup := kinds[kind]; dup {
		panic("agent: kind registered twice: " + kind)
	}
	kinds[kind] = f
}

// Kinds lists the registered agent kinds.
func Kinds() []string {
	mu.Lock()
	defer mu.Unlock()
	ks := make([]string, 0, len(kinds))
	for k := range kinds {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// Env is what an agent knows about where it runs.
type Env struct {
	Lab, Node, Kind string
	// Dir is the lab's run folder (mode 0700).
	Dir   string
	ready io.WriteCloser
	once  sync.Once
}

// Ready tells the starter the agent serves.
func (e *Env) Ready() {
	e.once.Do(func() {
		if e.ready != nil {
			io.WriteString(e.ready, "ok\n")
			e.ready.Close()
		}
	})
}

func (e *Env) fail(err error) {
	e.once.Do(func() {
		if e.ready != nil {
			io.WriteString(e.ready, err.Error())
			e.ready.Close()
		}
	})
}

// SocketPath is the agent's control socket in the lab's run folder.
func SocketPath(dir, node, kind string) string {
	return filepath.Join(dir, "agents", node+"."+kind+".sock")
}

// Listen opens the agent's control socket (mode 0600 in a 0700 folder). The
// protocol spoken on it belongs to the agent kind.
func (e *Env) Listen() (net.Listener, error) {
	path := SocketPath(e.Dir, e.Node, e.Kind)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	os.Remove(path)
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(path, 0o600); err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}

// Main runs the agent that args (the words after "agent") name and returns
// the process exit status.
func Main(args []string) int {
	fs := flag.NewFlagSet("agent", flag.ContinueOnError)
	env := &Env{}
	fs.StringVar(&env.Lab, "lab", "", "lab ID")
	fs.StringVar(&env.Node, "node", "", "node name")
	fs.StringVar(&env.Dir, "dir", "", "the lab's run folder")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if f := os.NewFile(readyFD, "ready"); f != nil && os.Getenv(EnvMarker) == "1" {
		env.ready = f
	}
	if fs.NArg() == 0 {
		fmt.Fprintf(os.Stderr, "agent: no kind given (have %v)\n", Kinds())
		return 2
	}
	env.Kind = fs.Arg(0)
	mu.Lock()
	f, ok := kinds[env.Kind]
	mu.Unlock()
	if !ok {
		err := fmt.Errorf("agent: unknown kind %q (have %v)", env.Kind, Kinds())
		env.fail(err)
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	err := f(ctx, env, fs.Args()[1:])
	if err != nil && !errors.Is(err, context.Canceled) {
		env.fail(err)
		fmt.Fprintf(os.Stderr, "agent %s on %s: %v\n", env.Kind, env.Node, err)
		return 1
	}
	env.fail(errors.New("agent exited before it was ready"))
	return 0
}

// MainIfAgent runs Main and exits when this process was started as an agent.
// A test binary that builds labs calls it first in TestMain, so the binary can
// serve as its own agent executable.
func MainIfAgent() {
	if os.Getenv(EnvMarker) == "1" && len(os.Args) > 1 && os.Args[1] == "agent" {
		os.Exit(Main(os.Args[2:]))
	}
}
