package scenarios

import (
	"context"
	"os"
	"testing"
)

// StartTest starts s's lab for a go test and removes it when the test ends
// (t.Cleanup). It skips the test, with the reason, where labs cannot be
// built (not root) or with -short. Each lab gets a unique ID and its own
// run folder, so parallel tests do not collide. The timeline's durations
// are scaled by $LVSLAB_DURATION_SCALE.
//
// Agents are this test binary re-executed inside the lab's nodes: the
// package's TestMain must call agent.MainIfAgent first.
func StartTest(t testing.TB, s *Scenario) *Lab {
	t.Helper()
	if testing.Short() {
		t.Skip("builds a lab; skipped with -short")
	}
	if os.Geteuid() != 0 {
		t.Skip("building labs needs root (network namespaces, netlink, nftables)")
	}
	scale, err := ScaleFromEnv()
	if err != nil {
		t.Fatal(err)
	}
	l, err := s.Start(context.Background(), RunOptions{RunDir: t.TempDir(), Scale: scale})
	if err != nil {
		t.Fatalf("starting lab %s: %v", s.Name, err)
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Errorf("removing lab %s: %v", l.ID(), err)
		}
	})
	return l
}
