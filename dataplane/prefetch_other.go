//go:build !amd64

package dataplane

import "unsafe"

// prefetch is a hint only; other architectures go without it.
func prefetch(unsafe.Pointer) {}
