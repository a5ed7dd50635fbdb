package engine

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
)

// Request is one request sent over a director's control socket: an
// ipvsadm run (Kind empty, as every client before the kinds sent it), the
// engine's statistics (Kind "stats") or a wait for the rate estimator's
// next fold (Kind "fold").
type Request struct {
	Kind  string   `json:"kind,omitempty"`
	Args  []string `json:"args"`
	Stdin []byte   `json:"stdin,omitempty"`
}

// Request kinds.
const (
	KindIpvsadm = ""
	KindStats   = "stats"
	KindFold    = "fold"
)

// Response is what an ipvsadm run printed and its exit status, or the
// statistics asked for.
type Response struct {
	Stdout []byte `json:"stdout"`
	Stderr []byte `json:"stderr"`
	Status int    `json:"status"`
	Stats  *Stats `json:"stats,omitempty"`
	Error  string `json:"error,omitempty"` // a request the director does not know
}

// Serve answers requests on l, one per connection, until l is closed.
func (e *Engine) Serve(l net.Listener) error {
	for {
		c, err := l.Accept()
		if err != nil {
			return err
		}
		go e.serveConn(c)
	}
}

func (e *Engine) serveConn(c net.Conn) {
	defer c.Close()
	var req Request
	if err := json.NewDecoder(c).Decode(&req); err != nil {
		return
	}
	var resp Response
	switch req.Kind {
	case KindIpvsadm:
		var out, errb bytes.Buffer
		resp.Status = e.Ipvsadm(req.Args, bytes.NewReader(req.Stdin), &out, &errb)
		resp.Stdout, resp.Stderr = out.Bytes(), errb.Bytes()
	case KindStats:
		s := e.Stats()
		resp.Stats = &s
	case KindFold:
		e.AwaitFold()
	default:
		resp.Error = fmt.Sprintf("unknown request kind %q", req.Kind)
	}
	json.NewEncoder(c).Encode(resp)
}

// readsStdin reports whether ipvsadm args read standard input (-R).
func readsStdin(args []string) bool {
	return slices.Contains(args, "-R") || slices.Contains(args, "--restore")
}

// Ipvsadm runs ipvsadm with args in the director whose control socket is
// socket, copying what it prints to stdout and stderr, and returns its exit
// status. stdin is read (to its end) only when args restore (-R).
func Ipvsadm(socket string, args []string, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	req := Request{Args: args}
	if readsStdin(args) && stdin != nil {
		b, err := io.ReadAll(stdin)
		if err != nil {
			return 0, err
		}
		req.Stdin = b
	}
	resp, err := call(socket, req)
	if err != nil {
		return 0, err
	}
	stderr.Write(resp.Stderr)
	stdout.Write(resp.Stdout)
	return resp.Status, nil
}

// ReadStats asks the director whose control socket is socket for its
// engine's statistics.
func ReadStats(socket string) (Stats, error) {
	resp, err := call(socket, Request{Kind: KindStats})
	if err != nil {
		return Stats{}, err
	}
	if resp.Stats == nil {
		return Stats{}, errors.New("director control socket: no statistics in the answer (an older director?)")
	}
	return *resp.Stats, nil
}

// AwaitFold returns once the estimator of the director whose control
// socket is socket has folded its counters as they stood at the call:
// from then on ipvsadm's --stats and --rate include all traffic before it.
func AwaitFold(socket string) error {
	_, err := call(socket, Request{Kind: KindFold})
	return err
}

// call sends one request and reads its response.
func call(socket string, req Request) (Response, error) {
	var resp Response
	c, err := net.Dial("unix", socket)
	if err != nil {
		return resp, fmt.Errorf("director control socket: %w", err)
	}
	defer c.Close()
	if err := json.NewEncoder(c).Encode(req); err != nil {
		return resp, err
	}
	if err := json.NewDecoder(c).Decode(&resp); err != nil {
		return resp, fmt.Errorf("director control socket: %w", err)
	}
	if resp.Error != "" {
		return resp, fmt.Errorf("director control socket: %s", resp.Error)
	}
	return resp, nil
}
