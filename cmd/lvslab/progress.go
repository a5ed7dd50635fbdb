package main

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
	"golang.org/x/sys/unix"
)

// isTerminal reports whether f is a terminal.
func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// timelineBar is a live progress bar of a run's timeline on a terminal,
// with the run's progress lines printed above it.
type timelineBar struct {
	p    *mpb.Progress
	mu   sync.Mutex
	bar  *mpb.Bar
	done chan struct{}
}

func newTimelineBar(w io.Writer) *timelineBar {
	return &timelineBar{p: mpb.New(mpb.WithOutput(w), mpb.WithRefreshRate(200*time.Millisecond)), done: make(chan struct{})}
}

// Write prints a progress line above the bar.
func (t *timelineBar) Write(b []byte) (int, error) { return t.p.Write(b) }

// start shows the bar for a timeline of length and moves it with the clock.
func (t *timelineBar) start(length time.Duration) {
	total := max(length.Milliseconds(), 1)
	start := time.Now()
	t.mu.Lock()
	t.bar = t.p.AddBar(total,
		mpb.PrependDecorators(decor.Name("timeline "), decor.Any(func(decor.Statistics) string {
			return fmt.Sprintf("%5.1fs / %.1fs", time.Since(start).Seconds(), length.Seconds())
		})),
		mpb.AppendDecorators(decor.Percentage()))
	bar := t.bar
	t.mu.Unlock()
	go func() {
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-t.done:
				return
			case <-tick.C:
				bar.SetCurrent(min(time.Since(start).Milliseconds(), total-1))
			}
		}
	}()
}

// stop removes the bar and waits until the display is flushed.
func (t *timelineBar) stop() {
	close(t.done)
	t.mu.Lock()
	if t.bar != nil {
		t.bar.Abort(true)
	}
	t.mu.Unlock()
	t.p.Wait()
}
