package fwdbench

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
)

// ConfigError names the setting of a Config that is wrong.
type ConfigError struct {
	Field string // seconds, rounds, fixed-pps, udp-len, dataplanes
	Err   error
}

func (e *ConfigError) Error() string { return e.Field + ": " + e.Err.Error() }
func (e *ConfigError) Unwrap() error { return e.Err }

// Check reports the first problem with c as a *ConfigError.
func (c *Config) Check() error {
	bad := func(field, format string, args ...any) error {
		return &ConfigError{Field: field, Err: fmt.Errorf(format, args...)}
	}
	switch {
	case c.Seconds < 1:
		return bad("seconds", "each measurement needs at least 1 s (iperf3 counts whole seconds), got %d", c.Seconds)
	case c.Rounds < 1:
		return bad("rounds", "need at least 1 round, got %d", c.Rounds)
	case c.FixedPPS < 1:
		return bad("fixed-pps", "the fixed load needs a positive rate, got %d", c.FixedPPS)
	case c.UDPLen < 1 || c.UDPLen > 1472:
		return bad("udp-len", "want a UDP payload of 1 to 1472 bytes, got %d", c.UDPLen)
	case c.Workers < 1:
		return bad("workers", "need at least 1 worker, got %d", c.Workers)
	}
	for _, dp := range c.Dataplanes {
		if !slices.Contains(AllDataplanes, dp) {
			return bad("dataplanes", "unknown dataplane %q (known: %v)", dp, AllDataplanes)
		}
	}
	return nil
}

// Programs are the real programs Run drives the lab with.
var Programs = []string{"ip", "nft", "iperf3", "wrk", "nginx"}

// CheckPrograms reports the first of Programs that is not installed.
func CheckPrograms() error {
	for _, p := range Programs {
		if _, err := exec.LookPath(p); err != nil {
			return fmt.Errorf("%s is not installed (make deps installs it): %w", p, err)
		}
	}
	return nil
}

// FileName is the report's name in its folder.
const FileName = "bench.json"

// Write writes the report as dir/bench.json, creating dir, and returns
// the file's path.
func (r *Report) Write(dir string) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, FileName)
	return path, os.WriteFile(path, append(b, '\n'), 0o644)
}
