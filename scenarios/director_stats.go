package scenarios

import (
	"fmt"

	"github.com/lvslab/lvslab/dataplane/engine"
	"github.com/lvslab/lvslab/reports"
)

// directorStats reads the director engine's counters for the report; nil
// when the lab has no director agent.
func (r *run) directorStats() (*reports.Director, error) {
	if r.director == "" {
		return nil, nil
	}
	s, err := engine.ReadStats(r.director)
	if err != nil {
		return nil, fmt.Errorf("director %s: %w", r.directorNode, err)
	}
	return &reports.Director{Node: r.directorNode, Counters: s.Counters(), Reassembly: s.Defrag, Drops: s.Drops()}, nil
}
