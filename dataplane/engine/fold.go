package engine

import "time"

// AwaitFold returns once the core's rate estimator has folded the counters
// as they stood at the call (ipvsadm lists folded counters, spec §9.1):
// it sleeps until the next fold is due and advances the core's clock to
// it, rather than wait up to a tick more for the ticker to.
func (e *Engine) AwaitFold() {
	e.mu.Lock()
	next := e.core.NextEstimate()
	e.mu.Unlock()
	time.Sleep(time.Until(next))
	now := time.Now()
	if now.Before(next) {
		now = next // the wall clock stepped back while we slept
	}
	e.mu.Lock()
	e.core.Advance(now)
	e.mu.Unlock()
}
