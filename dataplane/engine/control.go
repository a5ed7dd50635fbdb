package engine

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"slices"
)

// Request is one ipvsadm run sent over a director's control socket.
type Request struct {
	Args  []string `json:"args"`
	Stdin []byte   `json:"stdin,omitempty"`
}

// Response is what the run printed and its exit status.
type Response struct {
	Stdout []byte `json:"stdout"`
	Stderr []byte `json:"stderr"`
	Status int    `json:"status"`
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
	var out, errb bytes.Buffer
	code := e.Ipvsadm(req.Args, bytes.NewReader(req.Stdin), &out, &errb)
	json.NewEncoder(c).Encode(Response{Stdout: out.Bytes(), Stderr: errb.Bytes(), Status: code})
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
	c, err := net.Dial("unix", socket)
	if err != nil {
		return 0, fmt.Errorf("director control socket: %w", err)
	}
	defer c.Close()
	if err := json.NewEncoder(c).Encode(req); err != nil {
		return 0, err
	}
	var resp Response
	if err := json.NewDecoder(c).Decode(&resp); err != nil {
		return 0, fmt.Errorf("director control socket: %w", err)
	}
	stderr.Write(resp.Stderr)
	stdout.Write(resp.Stdout)
	return resp.Status, nil
}
