package dataplane

import "unsafe"

// prefetch asks the CPU to bring the cache line at p in without waiting for
// it: a plain load would stall until the line arrives.
//
//go:noescape
func prefetch(p unsafe.Pointer)
