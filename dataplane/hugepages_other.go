//go:build !linux

package dataplane

import "unsafe"

func adviseHuge(unsafe.Pointer, uintptr) {}
