package scenarios

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/lvslab/lvslab/topo"
)

// Lab is a scenario's lab, built and running: the director with its table,
// the real servers and the health checks. lvslab run drives one through
// its timeline; a go test can reach into it (Exec, IPVSADM) and run the
// timeline itself.
type Lab struct {
	r        *run
	features topo.Features
	close    sync.Once
	closeErr error
}

// Start builds the scenario's lab and starts what runs in it. On error
// nothing is left behind; otherwise Close removes the lab.
func (s *Scenario) Start(ctx context.Context, opt RunOptions) (*Lab, error) {
	if opt.Scale <= 0 {
		opt.Scale = 1
	}
	r := &run{s: s, opt: opt, servers: map[string]*topo.Agent{}, loaders: map[string]*topo.Agent{}, directors: map[string]*topo.Agent{},
		serverArgs: map[string][]string{}, dests: map[string][]Destination{}}
	l := &Lab{r: r, features: topo.Probe()}
	r.progress("building lab %s (%d nodes, %d networks); kernel features: %s", s.Name, len(s.Nodes), len(s.Networks), l.features)
	lab, err := s.BuildLab()
	if err != nil {
		return nil, err
	}
	r.in, err = topo.Build(ctx, lab, topo.Options{RunDir: opt.RunDir, Features: &l.features, Executable: opt.Executable})
	if err != nil {
		return nil, fmt.Errorf("building the lab: %w", err)
	}
	if err := r.start(); err != nil {
		return nil, errors.Join(err, l.Close())
	}
	return l, nil
}

// ID is the lab's unique name (lvslab ls, lvslab exec).
func (l *Lab) ID() string { return l.r.in.ID }

// Instance is the built lab, for what topo offers beyond this type.
func (l *Lab) Instance() *topo.Instance { return l.r.in }

// Exec runs a program inside node and returns its standard output.
func (l *Lab) Exec(node, name string, args ...string) ([]byte, error) {
	return l.r.in.Output(node, name, args...)
}

// IPVSADM runs ipvsadm against the lab's director and returns what it
// printed; a non-zero exit status is an error carrying ipvsadm's message.
func (l *Lab) IPVSADM(args ...string) (string, error) { return l.r.listing(args...) }

// Close stops everything in the lab and destroys it; later calls return
// the first call's result.
func (l *Lab) Close() error {
	l.close.Do(func() {
		r := l.r
		// Clients first, then servers, while the director still forwards:
		// their connections close cleanly instead of leaving orphaned
		// sockets that hold a namespace until the kernel gives up on them.
		for _, a := range r.loaders {
			a.Stop(agentGrace)
		}
		for _, a := range r.servers {
			a.Stop(agentGrace)
		}
		for _, p := range r.procs {
			p.Process.Kill()
			p.Wait()
		}
		if err := r.in.Destroy(); err != nil {
			l.closeErr = fmt.Errorf("destroying the lab: %w", err)
		}
		r.progress("lab %s destroyed", r.in.ID)
	})
	return l.closeErr
}
