package topo

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// OpenNetNS opens node's network namespace from the registry: by its pin, or
// through the live runner's descriptor (/proc/PID/fd/N) for an unpinned lab.
// The inode is checked, so a recycled descriptor is never entered.
func (l *LabInfo) OpenNetNS(node string) (*os.File, error) {
	n, ok := l.Node(node)
	if !ok {
		return nil, fmt.Errorf("lab %s has no node %q", l.ID, node)
	}
	var path string
	switch {
	case n.Pin != "":
		path = n.Pin
	case l.RunnerAlive:
		path = "/proc/" + strconv.Itoa(l.Runner) + "/fd/" + strconv.Itoa(n.FD)
	default:
		return nil, fmt.Errorf("lab %s: node %q is gone (its runner exited and it was not pinned)", l.ID, node)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	if !sameNS(f, n.Ino) {
		f.Close()
		return nil, fmt.Errorf("lab %s: node %q: %s is no longer its namespace", l.ID, node, path)
	}
	return f, nil
}

// Exec replaces this process with argv running inside node, with
// LVSLAB_LAB and LVSLAB_NODE in its environment. It returns only on error.
func Exec(l *LabInfo, node string, argv []string) error {
	if len(argv) == 0 {
		return fmt.Errorf("no command to run in %s", node)
	}
	bin, err := exec.LookPath(argv[0])
	if err != nil {
		return err
	}
	f, err := l.OpenNetNS(node)
	if err != nil {
		return err
	}
	env := append(os.Environ(), "LVSLAB_LAB="+l.ID, "LVSLAB_NODE="+node)
	// execve keeps the calling thread's namespaces for the new program.
	runtime.LockOSThread()
	if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
		return fmt.Errorf("enter %s: %w", node, err)
	}
	return syscall.Exec(bin, argv, env)
}
