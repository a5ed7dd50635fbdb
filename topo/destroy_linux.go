package topo

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// TeardownTimeout bounds the wait for the kernel's asynchronous namespace
// teardown.
var TeardownTimeout = 60 * time.Second

// agentGrace is how long an agent may take to end after SIGTERM.
const agentGrace = 2 * time.Second

// Destroy removes everything the lab owns: it stops the agents, kills any
// other process still inside a lab namespace, unpins the namespaces, deletes
// every veth pair in one batch (one request in the fabric, returning when the
// kernel has unregistered them), releases the node namespaces and checks
// that no veth of the lab is left in the fabric (when the batch delete
// failed, that waits for the kernel's asynchronous namespace teardown to
// remove them), then releases the fabric and the run folder. It is safe to
// call more than once.
func (in *Instance) Destroy() error {
	in.destroy.Do(func() { in.destroyE = in.teardown() })
	return in.destroyE
}

func (in *Instance) teardown() error {
	var errs []error
	note := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	note(in.reg.add(record{Op: "state", State: "destroying"}))
	var w *fabricWatch
	if in.fabric != nil {
		var err error
		w, err = watchFabric(int(in.fabric.Fd()), in.ID)
		note(err)
	}
	for _, a := range in.Agents() {
		note(a.Stop(agentGrace))
	}
	// The Instance holds every namespace, so no inode can have been reused:
	// no cookie check (0) is needed.
	inos := map[uint64]uint64{}
	for _, h := range append(in.nodes, in.fabric) {
		if h != nil {
			var st unix.Stat_t
			if unix.Fstat(int(h.Fd()), &st) == nil {
				inos[st.Ino] = 0
			}
		}
	}
	note(killInNamespaces(inos))
	fabricPin := filepath.Join(in.Dir, "netns", FabricNode)
	for _, p := range in.pins {
		if p != fabricPin {
			note(unpin(p))
		}
	}
	if in.fabric != nil {
		if v, err := newVethMaker(in.fabric); err == nil {
			note(v.deleteVeths())
			v.close()
		}
	}
	for _, h := range in.nodes {
		if h != nil {
			h.Close()
		}
	}
	if w != nil {
		note(w.wait(TeardownTimeout))
		w.close()
	}
	if in.fabric != nil {
		in.fabric.Close()
	}
	note(unpin(fabricPin))
	note(in.reg.close())
	note(os.RemoveAll(in.Dir))
	return errors.Join(errs...)
}

// Destroy removes the lab called name (ID or scenario name) under runDir
// from its ownership log: what `lvslab down` does, and what works after the
// runner was killed.
func Destroy(runDir, name string) error {
	info, err := Find(runDir, name)
	if err != nil {
		return err
	}
	return destroyRecorded(info)
}

// DestroyAll removes every lab under runDir whose runner is gone, and
// returns the IDs it removed. Labs still held by a live runner are left to
// it and reported in the error.
func DestroyAll(runDir string) ([]string, error) {
	labs, err := List(runDir)
	if err != nil {
		return nil, err
	}
	var done []string
	var errs []error
	for _, l := range labs {
		if err := destroyRecorded(l); err != nil {
			errs = append(errs, err)
			continue
		}
		done = append(done, l.ID)
	}
	return done, errors.Join(errs...)
}

func destroyRecorded(info *LabInfo) error {
	if info.RunnerAlive {
		return fmt.Errorf("lab %s (%s) is held by running process %d; its own teardown removes it", info.ID, info.Name, info.Runner)
	}
	var errs []error
	note := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	if reg, err := openRegistry(info.Dir); err == nil {
		note(reg.add(record{Op: "state", State: "destroying"}))
		defer reg.close()
	}
	// Hold the fabric (if it is pinned) while the nodes go, to watch them go.
	var w *fabricWatch
	var fabric *os.File
	if info.fabric.Pin != "" {
		if f, err := os.Open(info.fabric.Pin); err == nil {
			defer f.Close()
			if sameNS(f, info.fabric.Ino) {
				fabric = f
				w, err = watchFabric(int(f.Fd()), info.ID)
				note(err)
			}
		}
	}
	inos := map[uint64]uint64{info.fabric.Ino: info.fabric.Cookie}
	for _, n := range info.Nodes {
		inos[n.Ino] = n.Cookie
	}
	delete(inos, 0)
	note(killInNamespaces(inos))
	if w != nil {
		if v, err := newVethMaker(fabric); err == nil {
			note(v.deleteVeths())
			v.close()
		}
	}
	for _, n := range info.Nodes {
		if n.Pin != "" {
			note(unpin(n.Pin))
		}
	}
	if w != nil {
		note(w.wait(TeardownTimeout))
		w.close()
	}
	if info.fabric.Pin != "" {
		note(unpin(info.fabric.Pin))
	}
	note(os.RemoveAll(info.Dir))
	if len(errs) > 0 {
		return fmt.Errorf("lab %s: %w", info.ID, errors.Join(errs...))
	}
	return nil
}

func sameNS(f *os.File, ino uint64) bool {
	var st unix.Stat_t
	return unix.Fstat(int(f.Fd()), &st) == nil && st.Ino == ino
}

// unpin removes a namespace bind mount and its file; a pin that was never
// mounted (the runner died in between) is just removed.
func unpin(path string) error {
	err := unix.Unmount(path, unix.MNT_DETACH)
	if err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("unpin %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// processesIn lists the processes (other than this one) whose network
// namespace is one of inos (inode → cookie; a zero cookie is not checked).
func processesIn(inos map[uint64]uint64) []int {
	entries, _ := os.ReadDir("/proc")
	self := os.Getpid()
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		link, err := os.Readlink("/proc/" + e.Name() + "/ns/net")
		if err != nil {
			continue // gone, or a zombie: it holds no namespace any more
		}
		// "net:[4026532281]"
		ino, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimPrefix(link, "net:["), "]"), 10, 64)
		cookie, ours := inos[ino]
		if err != nil || !ours {
			continue
		}
		if cookie != 0 {
			if c, err := processNetNSCookie(e.Name()); err != nil || c != cookie {
				continue // a namespace that reuses a freed lab namespace's inode
			}
		}
		pids = append(pids, pid)
	}
	return pids
}

// killInNamespaces ends every process living in a lab namespace: a process
// in the lab's namespace is the lab's, whoever started it (an agent, or
// nginx from `lvslab exec`). SIGTERM first, SIGKILL after the grace.
func killInNamespaces(inos map[uint64]uint64) error {
	if len(inos) == 0 {
		return nil
	}
	pids := processesIn(inos)
	if len(pids) == 0 {
		return nil
	}
	for _, p := range pids {
		syscall.Kill(p, syscall.SIGTERM)
	}
	deadline := time.Now().Add(agentGrace)
	for len(pids) > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		pids = processesIn(inos)
	}
	for _, p := range pids {
		syscall.Kill(p, syscall.SIGKILL)
	}
	deadline = time.Now().Add(5 * time.Second)
	for len(pids) > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		pids = processesIn(inos)
	}
	if len(pids) > 0 {
		return fmt.Errorf("processes %v do not die", pids)
	}
	return nil
}

// fabricWatch observes the kernel's teardown of a lab's node namespaces
// from the fabric: when a node namespace is freed its veth ends go, and so
// do their peers on the fabric's bridges.
type fabricWatch struct {
	h      *netlink.Handle
	prefix string
	ch     chan netlink.LinkUpdate
	done   chan struct{}
}

func watchFabric(fd int, id string) (*fabricWatch, error) {
	h, err := netlink.NewHandleAt(netns.NsHandle(fd), unix.NETLINK_ROUTE)
	if err != nil {
		return nil, err
	}
	w := &fabricWatch{h: h, prefix: id, ch: make(chan netlink.LinkUpdate, 4096), done: make(chan struct{})}
	nsh := netns.NsHandle(fd)
	err = netlink.LinkSubscribeWithOptions(w.ch, w.done, netlink.LinkSubscribeOptions{
		Namespace: &nsh, ReceiveBufferSize: 8 << 20, ReceiveBufferForceSize: true,
		ErrorCallback: func(error) {}, // overflow: the periodic count still ends the wait
	})
	if err != nil {
		h.Close()
		return nil, err
	}
	return w, nil
}

// remaining counts the lab's veth ends still in the fabric.
func (w *fabricWatch) remaining() (int, error) {
	links, err := w.h.LinkList()
	for errors.Is(err, netlink.ErrDumpInterrupted) {
		links, err = w.h.LinkList() // links changed during the dump: again
	}
	if err != nil {
		return 0, err
	}
	n := 0
	for _, l := range links {
		if l.Type() == "veth" && strings.HasPrefix(l.Attrs().Name, w.prefix) {
			n++
		}
	}
	return n, nil
}

// wait returns once no veth of the lab is left in the fabric. Events make
// it quick; a listing confirms the end (and covers lost events).
func (w *fabricWatch) wait(timeout time.Duration) error {
	left, err := w.remaining()
	if err != nil {
		return err
	}
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for left > 0 {
		select {
		case u, ok := <-w.ch:
			if !ok {
				w.ch = nil // subscription ended; keep counting by listing
				continue
			}
			if u.Header.Type == unix.RTM_DELLINK && u.Link.Type() == "veth" && strings.HasPrefix(u.Link.Attrs().Name, w.prefix) {
				if left--; left <= 0 {
					if left, err = w.remaining(); err != nil {
						return err
					}
				}
			}
		case <-tick.C:
			if left, err = w.remaining(); err != nil {
				return err
			}
		case <-deadline.C:
			return fmt.Errorf("%d namespaces' links still exist after %v", left, timeout)
		}
	}
	return nil
}

func (w *fabricWatch) close() {
	close(w.done)
	w.h.Close()
}
