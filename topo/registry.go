package topo

import (
	"bufio"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Prefix starts every lab ID, and so every name a lab puts where other labs
// could see it.
const Prefix = "lvs"

// DefaultRunDir is where labs record what they own; LVSLAB_RUN_DIR overrides it.
const DefaultRunDir = "/run/lvslab"

// RunDir returns the run folder in effect.
func RunDir() string {
	if d := os.Getenv("LVSLAB_RUN_DIR"); d != "" {
		return d
	}
	return DefaultRunDir
}

// ownerLog is the ownership registry of one lab: an append-only file of JSON
// records in the lab's run folder. Each record is written with one write(2)
// before the object it names can outlive the process that creates it, so a
// runner killed at any point leaves a log that names everything to remove.
const ownerLog = "owner.log"

// FabricNode names the namespace that holds the lab's bridges: in the
// registry, and for NetNS, Do and StartAgent (a link impairment's relay runs
// there). No node can take the name: node names cannot start with "~".
const FabricNode = "~fabric"

// record is one line of the ownership log.
type record struct {
	Op string `json:"op"` // lab | ns | pin | agent | state

	// op=lab
	ID          string    `json:"id,omitempty"`
	Name        string    `json:"name,omitempty"`
	Runner      int       `json:"runner,omitempty"`
	RunnerStart uint64    `json:"runner_start,omitempty"`
	Created     time.Time `json:"created,omitzero"`

	// op=ns, pin, agent
	Node string `json:"node,omitempty"`
	Ino  uint64 `json:"ino,omitempty"` // network namespace inode
	// Cookie is the namespace's cookie, which unlike Ino is never reused.
	Cookie uint64 `json:"cookie,omitempty"`
	FD     int    `json:"fd,omitempty"`   // the runner's descriptor for it
	Path   string `json:"path,omitempty"` // op=pin: bind mount
	Kind   string `json:"kind,omitempty"` // op=agent
	PID    int    `json:"pid,omitempty"`
	// Start is the process start time (clock ticks since boot), so a
	// recycled PID is never mistaken for the agent.
	Start uint64 `json:"start,omitempty"`

	State string `json:"state,omitempty"` // op=state: building | up | destroying
}

// registry appends records to a lab's ownership log.
type registry struct {
	mu  sync.Mutex
	f   *os.File
	dir string
}

func newLabID() string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, 5)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return Prefix + string(b)
}

// createRegistry makes the lab's run folder (mode 0700) under runDir and
// opens its log.
func createRegistry(runDir string) (*registry, string, error) {
	if err := os.MkdirAll(runDir, 0o700); err != nil {
		return nil, "", err
	}
	for range 10 {
		id := newLabID()
		dir := filepath.Join(runDir, id)
		if err := os.Mkdir(dir, 0o700); errors.Is(err, fs.ErrExist) {
			continue
		} else if err != nil {
			return nil, "", err
		}
		f, err := os.OpenFile(filepath.Join(dir, ownerLog), os.O_CREATE|os.O_WRONLY|os.O_APPEND|os.O_EXCL, 0o600)
		if err != nil {
			os.Remove(dir)
			return nil, "", err
		}
		return &registry{f: f, dir: dir}, id, nil
	}
	return nil, "", errors.New("no free lab ID")
}

// openRegistry reopens an existing lab's log for appending.
func openRegistry(dir string) (*registry, error) {
	f, err := os.OpenFile(filepath.Join(dir, ownerLog), os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	return &registry{f: f, dir: dir}, nil
}

func (r *registry) add(rec record) error {
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	b = append(b, '\n')
	r.mu.Lock()
	defer r.mu.Unlock()
	_, err = r.f.Write(b)
	return err
}

func (r *registry) close() error { return r.f.Close() }

// LabInfo is what the ownership log says about a lab.
type LabInfo struct {
	ID      string
	Name    string
	Dir     string
	State   string // building | up | destroying
	Created time.Time
	Runner  int
	// RunnerAlive says the process that built the lab still runs (and holds
	// its namespaces by file descriptor).
	RunnerAlive bool
	Nodes       []NodeInfo
	Agents      []AgentInfo

	runnerStart uint64
	fabric      NodeInfo
}

// NodeInfo is a node's namespace as the registry records it.
type NodeInfo struct {
	Name   string
	Ino    uint64 // network namespace inode
	Cookie uint64 // network namespace cookie
	FD     int    // the runner's descriptor
	Pin    string // bind mount, when pinned
}

// AgentInfo is an agent process the registry records.
type AgentInfo struct {
	Node, Kind string
	PID        int
	Alive      bool
	start      uint64
}

// readLab parses a lab's ownership log. A torn last line (the writer was
// killed mid-write) is ignored.
func readLab(dir string) (*LabInfo, error) {
	f, err := os.Open(filepath.Join(dir, ownerLog))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	info := &LabInfo{ID: filepath.Base(dir), Dir: dir, State: "building"}
	nodes := map[string]*NodeInfo{}
	var order []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var rec record
		if json.Unmarshal(sc.Bytes(), &rec) != nil {
			continue
		}
		switch rec.Op {
		case "lab":
			info.Name, info.Runner, info.runnerStart, info.Created = rec.Name, rec.Runner, rec.RunnerStart, rec.Created
		case "ns", "pin":
			n, ok := nodes[rec.Node]
			if !ok {
				n = &NodeInfo{Name: rec.Node}
				nodes[rec.Node] = n
				order = append(order, rec.Node)
			}
			if rec.Op == "ns" {
				n.Ino, n.Cookie, n.FD = rec.Ino, rec.Cookie, rec.FD
			} else {
				n.Pin = rec.Path
			}
		case "agent":
			info.Agents = append(info.Agents, AgentInfo{Node: rec.Node, Kind: rec.Kind, PID: rec.PID, start: rec.Start})
		case "state":
			info.State = rec.State
		}
	}
	for _, name := range order {
		if name == FabricNode {
			info.fabric = *nodes[name]
			continue
		}
		info.Nodes = append(info.Nodes, *nodes[name])
	}
	info.RunnerAlive = info.Runner != 0 && info.Runner != os.Getpid() && processAlive(info.Runner, info.runnerStart)
	for i := range info.Agents {
		a := &info.Agents[i]
		a.Alive = processAlive(a.PID, a.start)
	}
	return info, nil
}

// List returns the labs recorded under runDir, oldest first.
func List(runDir string) ([]*LabInfo, error) {
	entries, err := os.ReadDir(runDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var labs []*LabInfo
	for _, e := range entries {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), Prefix) {
			continue
		}
		info, err := readLab(filepath.Join(runDir, e.Name()))
		if err != nil {
			// A folder without a log: the runner died before writing it.
			info = &LabInfo{ID: e.Name(), Dir: filepath.Join(runDir, e.Name()), State: "building"}
		}
		labs = append(labs, info)
	}
	sort.Slice(labs, func(i, j int) bool { return labs[i].Created.Before(labs[j].Created) })
	return labs, nil
}

// Find returns the lab whose ID or scenario name is name.
func Find(runDir, name string) (*LabInfo, error) {
	labs, err := List(runDir)
	if err != nil {
		return nil, err
	}
	var found []*LabInfo
	for _, l := range labs {
		if l.ID == name || l.Name == name {
			found = append(found, l)
		}
	}
	switch len(found) {
	case 0:
		return nil, fmt.Errorf("no lab %q (lvslab ls lists them)", name)
	case 1:
		return found[0], nil
	}
	ids := make([]string, len(found))
	for i, l := range found {
		ids[i] = l.ID
	}
	return nil, fmt.Errorf("%d labs are called %q; name one by ID: %s", len(found), name, strings.Join(ids, ", "))
}

// Node returns the recorded node called name.
func (l *LabInfo) Node(name string) (NodeInfo, bool) {
	for _, n := range l.Nodes {
		if n.Name == name {
			return n, true
		}
	}
	return NodeInfo{}, false
}

// processStart returns a process's start time in clock ticks since boot
// (field 22 of /proc/PID/stat), which with the PID identifies it.
func processStart(pid int) (uint64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces; fields resume after ')'.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0, errors.New("malformed stat")
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 {
		return 0, errors.New("malformed stat")
	}
	if f[0] == "Z" || f[0] == "X" {
		return 0, errors.New("exited")
	}
	return strconv.ParseUint(f[19], 10, 64)
}

func processAlive(pid int, start uint64) bool {
	if pid <= 0 {
		return false
	}
	s, err := processStart(pid)
	return err == nil && s == start
}
