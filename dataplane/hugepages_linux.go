package dataplane

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// adviseHuge asks for transparent huge pages behind a large table: with
// millions of connections every lookup is a random access, and 4 KiB pages
// add a TLB miss (and, in a VM, a nested page walk) to each. Failure only
// costs speed.
func adviseHuge(p unsafe.Pointer, size uintptr) {
	const huge = 2 << 20
	start := (uintptr(p) + huge - 1) &^ (huge - 1)
	end := (uintptr(p) + size) &^ (huge - 1)
	if end <= start {
		return
	}
	b := unsafe.Slice((*byte)(p), size)
	_ = unix.Madvise(b[start-uintptr(p):end-uintptr(p)], unix.MADV_HUGEPAGE)
}
