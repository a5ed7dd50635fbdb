package fwdbench

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Server is the iperf3 servers in the lab's server namespace: one on the
// RIP (kernel routing, DNAT, NAT) and one on the VIP the server holds for
// direct routing. Each must be bound to its address: iperf3's UDP tests
// answer from the address they are bound to, and a DR reply must come from
// the VIP.
type Server struct{ cmds []*exec.Cmd }

// StartServer starts the servers and waits until both listen.
func (l *Lab) StartServer() (*Server, error) {
	s := &Server{}
	for _, a := range []netip.Addr{l.ServerAddr, l.VIP} {
		c := Cmd(l.Server, "iperf3", "-s", "-B", a.String())
		if err := c.Start(); err != nil {
			s.Stop()
			return nil, err
		}
		s.cmds = append(s.cmds, c)
	}
	ok := waitFor(5*time.Second, func() bool {
		out, _ := Cmd(l.Server, "ss", "-ltnH", "sport = :5201").Output()
		return len(strings.Fields(string(out))) > 0 && len(strings.Split(strings.TrimSpace(string(out)), "\n")) == 2
	})
	if !ok {
		s.Stop()
		return nil, fmt.Errorf("iperf3 servers did not listen")
	}
	return s, nil
}

// Stop ends the servers.
func (s *Server) Stop() {
	for _, c := range s.cmds {
		c.Process.Kill()
		c.Wait()
	}
}

// Load is one iperf3 run from the client namespace.
type Load struct {
	UDP     bool
	Seconds int
	Len     int    // -l: UDP payload size (0: iperf3's default)
	Rate    string // -b: offered rate ("0": unlimited)
	Reverse bool   // -R: the server sends (TCP: the real server's response direction)
}

// Result of one run.
type Result struct {
	BitsPerSecond float64 // received
	PPS           float64 // UDP datagrams received per second
	LossPercent   float64 // UDP
	Retransmits   int     // TCP
	CPS           float64 // new TCP connections (one HTTP request each) per second
	BusyCPU       float64 // machine CPU busy during the run, in cores
	DirectorCPU   float64 // this process's CPU during the run, in cores (the userspace forwarder)
	// DirectorCPUSeconds is the same in seconds.
	DirectorCPUSeconds float64
	LoadgenCPU         float64 // the load generator's CPU (iperf3 or wrk client), in cores
	ServerCPU          float64 // the iperf3 server's CPU, in cores, as iperf3 reports it
}

// measured runs c (a load generator in the client namespace) and returns
// its output and the CPU the machine, this process and c spent, in cores.
func measured(c *exec.Cmd) ([]byte, Result, error) {
	cpu0, self0 := busy(), selfCPU()
	t0 := time.Now()
	out, err := c.Output()
	elapsed := time.Since(t0).Seconds()
	cpu1, self1 := busy(), selfCPU()
	r := Result{BusyCPU: (cpu1 - cpu0) / elapsed, DirectorCPU: (self1 - self0) / elapsed, DirectorCPUSeconds: self1 - self0}
	if ps := c.ProcessState; ps != nil {
		r.LoadgenCPU = (ps.UserTime() + ps.SystemTime()).Seconds() / elapsed
	}
	return out, r, err
}

// Drive runs load against target and reads iperf3's receiver-side numbers.
func (l *Lab) Drive(target netip.Addr, load Load) (Result, error) {
	args := []string{"iperf3", "-c", target.String(), "-t", strconv.Itoa(load.Seconds), "-J"}
	if load.UDP {
		args = append(args, "-u")
	}
	if load.Reverse {
		args = append(args, "-R")
	}
	if load.Len > 0 {
		args = append(args, "-l", strconv.Itoa(load.Len))
	}
	if load.Rate != "" {
		args = append(args, "-b", load.Rate)
	}
	out, r, err := measured(Cmd(l.Client, args...))
	var doc struct {
		Error string `json:"error"`
		End   struct {
			CPU struct {
				Remote float64 `json:"remote_total"` // percent of one core
			} `json:"cpu_utilization_percent"`
			SumReceived struct {
				Bps float64 `json:"bits_per_second"`
			} `json:"sum_received"`
			SumSent struct {
				Retransmits int `json:"retransmits"`
			} `json:"sum_sent"`
			Sum struct {
				Bps     float64 `json:"bits_per_second"`
				Seconds float64 `json:"seconds"`
				Packets float64 `json:"packets"`
				Lost    float64 `json:"lost_packets"`
				LostPct float64 `json:"lost_percent"`
			} `json:"sum"`
		} `json:"end"`
	}
	if jerr := json.Unmarshal(out, &doc); jerr != nil {
		return r, fmt.Errorf("iperf3 %s: %v: %s", strings.Join(args[1:], " "), err, out)
	}
	if doc.Error != "" {
		return r, fmt.Errorf("iperf3 %s: %s", strings.Join(args[1:], " "), doc.Error)
	}
	r.ServerCPU = doc.End.CPU.Remote / 100
	if load.UDP {
		s := doc.End.Sum
		if s.Seconds > 0 {
			r.PPS = (s.Packets - s.Lost) / s.Seconds
		}
		r.BitsPerSecond = s.Bps * (1 - s.LostPct/100)
		r.LossPercent = s.LostPct
	} else {
		r.BitsPerSecond = doc.End.SumReceived.Bps
		r.Retransmits = doc.End.SumSent.Retransmits
	}
	return r, nil
}

// busy returns the machine's non-idle CPU seconds so far (/proc/stat).
func busy() float64 {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	var total, idle float64
	for i, v := range f[1:] {
		x, _ := strconv.ParseFloat(v, 64)
		total += x
		if i == 3 || i == 4 { // idle, iowait
			idle += x
		}
	}
	return (total - idle) / 100 // USER_HZ
}

// selfCPU returns this process's user+system CPU seconds so far.
func selfCPU() float64 {
	var ru unix.Rusage
	if unix.Getrusage(unix.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}
