package topo

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/lvslab/lvslab/topo/agent"
	_ "github.com/lvslab/lvslab/topo/ipipd" // every binary that builds labs serves the decapsulator
)

// AgentReadyTimeout bounds how long StartAgent waits for an agent to report.
var AgentReadyTimeout = 15 * time.Second

// Agent is a long-running process in a node: this binary re-executed there.
type Agent struct {
	Node, Kind string
	PID        int
	// Socket is the agent's control socket, if the kind listens on one.
	Socket string
	// Log collects the agent's stdout and stderr.
	Log string

	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

// StartAgent starts `lvslab agent KIND ARGS…` inside node and waits until it
// is ready. The registry records it, so teardown stops it even after the
// runner is gone.
func (in *Instance) StartAgent(node, kind string, args ...string) (*Agent, error) {
	exe := in.opt.Executable
	if exe == "" {
		var err error
		if exe, err = os.Executable(); err != nil {
			return nil, err
		}
	}
	argv := append([]string{"agent", "--lab", in.ID, "--node", node, "--dir", in.Dir, kind}, args...)
	cmd := exec.Command(exe, argv...)
	cmd.Env = append(os.Environ(), agent.EnvMarker+"=1")
	logs := filepath.Join(in.Dir, "logs")
	if err := os.MkdirAll(logs, 0o700); err != nil {
		return nil, err
	}
	a := &Agent{Node: node, Kind: kind, Socket: agent.SocketPath(in.Dir, node, kind),
		Log: filepath.Join(logs, node+"."+kind+".log"), cmd: cmd, done: make(chan struct{})}
	logf, err := os.OpenFile(a.Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = logf, logf
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	cmd.ExtraFiles = []*os.File{w}
	// Its own process group keeps a terminal's Ctrl-C for the runner, which
	// then tears down in order; an attached agent dies with the runner.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if !in.opt.Detached {
		cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	}
	err = in.Do(node, cmd.Start)
	w.Close()
	if err != nil {
		return nil, fmt.Errorf("agent %s: %w", kind, err)
	}
	a.PID = cmd.Process.Pid
	go func() { a.err = cmd.Wait(); close(a.done) }()
	start, _ := processStart(a.PID)
	if err := in.reg.add(record{Op: "agent", Node: node, Kind: kind, PID: a.PID, Start: start}); err != nil {
		a.kill()
		return nil, err
	}
	in.mu.Lock()
	in.agents = append(in.agents, a)
	in.mu.Unlock()

	msg := make(chan []byte, 1)
	go func() { b, _ := io.ReadAll(io.LimitReader(r, 4096)); msg <- b }()
	select {
	case b := <-msg:
		if string(b) == "ok\n" {
			return a, nil
		}
		a.kill()
		if len(b) == 0 {
			b = []byte("exited before it was ready")
		}
		return nil, fmt.Errorf("agent %s: %s%s", kind, b, a.logTail())
	case <-time.After(AgentReadyTimeout):
		a.kill()
		return nil, fmt.Errorf("agent %s: not ready after %v%s", kind, AgentReadyTimeout, a.logTail())
	}
}

// Dial connects to the agent's control socket.
func (a *Agent) Dial() (net.Conn, error) { return net.Dial("unix", a.Socket) }

// Done is closed when the agent exits.
func (a *Agent) Done() <-chan struct{} { return a.done }

// Stop asks the agent to end (SIGTERM) and kills it after grace.
func (a *Agent) Stop(grace time.Duration) error {
	select {
	case <-a.done:
		return nil
	default:
	}
	a.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-a.done:
	case <-time.After(grace):
		a.kill()
	}
	var ee *exec.ExitError
	if errors.As(a.err, &ee) && ee.Exited() {
		return fmt.Errorf("agent %s on %s: %w%s", a.Kind, a.Node, a.err, a.logTail())
	}
	return nil
}

func (a *Agent) kill() {
	a.cmd.Process.Kill()
	<-a.done
}

func (a *Agent) logTail() string {
	b, err := os.ReadFile(a.Log)
	if err != nil || len(b) == 0 {
		return ""
	}
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return "\n" + strings.TrimSpace(string(bytes.ToValidUTF8(b, nil)))
}

// Agents returns the agents started in the lab.
func (in *Instance) Agents() []*Agent {
	in.mu.Lock()
	defer in.mu.Unlock()
	return append([]*Agent(nil), in.agents...)
}

// Start starts cmd inside node (any program: curl, tcpdump, nginx). The
// caller waits for it; Destroy kills whatever still runs in the lab.
func (in *Instance) Start(node string, cmd *exec.Cmd) error {
	return in.Do(node, cmd.Start)
}

// Run runs cmd inside node and waits for it.
func (in *Instance) Run(node string, cmd *exec.Cmd) error {
	if err := in.Start(node, cmd); err != nil {
		return err
	}
	return cmd.Wait()
}

// Output runs a program inside node and returns its standard output.
func (in *Instance) Output(node, name string, args ...string) ([]byte, error) {
	cmd := exec.Command(name, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	var out bytes.Buffer
	cmd.Stdout = &out
	if err := in.Run(node, cmd); err != nil {
		return out.Bytes(), fmt.Errorf("%s on %s: %w: %s", name, node, err, strings.TrimSpace(stderr.String()))
	}
	return out.Bytes(), nil
}
