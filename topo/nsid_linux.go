package topo

import (
	"os"

	"golang.org/x/sys/unix"
)

// A namespace's inode number identifies it only while it lives: the kernel
// reuses inode numbers, and on a shared machine another program's new
// namespace may soon carry a freed lab namespace's number. Its cookie is
// never reused, so the registry records both and teardown kills a process
// only when the cookie of its namespace matches too.

// threadNetNSCookie returns the cookie of the calling thread's namespace.
func threadNetNSCookie() (uint64, error) {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, err
	}
	defer unix.Close(fd)
	return unix.GetsockoptUint64(fd, unix.SOL_SOCKET, unix.SO_NETNS_COOKIE)
}

// NetNSCookie returns the cookie of the network namespace f refers to (a
// namespace file: a pin, /proc/PID/ns/net, a held descriptor).
func NetNSCookie(f interface{ Fd() uintptr }) (uint64, error) {
	var c uint64
	err := onLockedThread(func() error {
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			return err
		}
		var err error
		c, err = threadNetNSCookie()
		return err
	})
	return c, err
}

// processNetNSCookie returns the cookie of a process's namespace.
func processNetNSCookie(pid string) (uint64, error) {
	f, err := os.Open("/proc/" + pid + "/ns/net")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	return NetNSCookie(f)
}
