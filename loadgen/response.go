package loadgen

import (
	"bytes"
	"errors"

	"github.com/lvslab/lvslab/loadgen/wire"
)

// response parses one response as it arrives in pieces, without allocating
// once its header buffer has grown: an HTTP/1.1 response (Content-Length,
// chunked, or up to EOF) or a wire-prefixed tcp response.
type response struct {
	kind   wire.Kind
	header string // the server header name, lower case (http)

	phase  phase
	got    int   // response bytes so far
	remain int64 // body (or chunk) bytes still to come
	status int
	id     [64]byte
	idLen  int
	close  bool // the server closes the connection after this response

	buf []byte // http header bytes held across reads; tcp prefix bytes

	// chunked transfer coding
	chunkDigits int
	chunkExt    bool
	lineLen     int
}

type phase uint8

const (
	phaseHeader    phase = iota // http status line and headers; tcp prefix
	phaseBody                   // remain bytes
	phaseUntilEOF               // the body ends when the server closes
	phaseChunkSize              // hex size line
	phaseChunkData              // remain bytes, then CRLF
	phaseChunkCRLF              // the CRLF after chunk data
	phaseTrailer                // trailer lines up to an empty line
	phaseDone
)

const maxHeaderBytes = 64 << 10

var (
	errMalformed = errors.New("malformed response")
	errShort     = errors.New("connection closed before the response was complete")
)

func (r *response) reset() {
	r.phase, r.got, r.remain, r.status, r.idLen, r.close = phaseHeader, 0, 0, 0, 0, false
	r.buf = r.buf[:0]
	r.chunkDigits, r.chunkExt, r.lineLen = 0, false, 0
}

// server is the name the response carried, nil if none (aliases r).
func (r *response) server() []byte {
	if r.idLen == 0 {
		return nil
	}
	return r.id[:r.idLen]
}

func (r *response) setServer(b []byte) {
	r.idLen = copy(r.id[:], b)
}

// feed consumes b; done reports a complete response. Bytes after a complete
// response are not consumed (nothing is pipelined, so there are none).
func (r *response) feed(b []byte) (done bool, err error) {
	for len(b) > 0 && r.phase != phaseDone {
		var n int
		switch r.phase {
		case phaseHeader:
			if r.kind == wire.HTTP {
				n, err = r.feedHTTPHeader(b)
			} else {
				n, err = r.feedPrefix(b)
			}
		case phaseBody, phaseChunkData:
			n = int(min(int64(len(b)), r.remain))
			r.remain -= int64(n)
			if r.remain == 0 {
				if r.phase == phaseBody {
					r.phase = phaseDone
				} else {
					r.phase, r.lineLen = phaseChunkCRLF, 0
				}
			}
		case phaseUntilEOF:
			n = len(b)
		case phaseChunkSize:
			n, err = r.feedChunkSize(b)
		case phaseChunkCRLF, phaseTrailer:
			n, err = r.feedLines(b)
		}
		if err != nil {
			return false, err
		}
		r.got += n
		b = b[n:]
	}
	return r.phase == phaseDone, nil
}

// eof tells the parser the server closed; done reports whether that ended a
// complete response.
func (r *response) eof() (done bool, err error) {
	switch r.phase {
	case phaseDone:
		return true, nil
	case phaseUntilEOF:
		r.phase = phaseDone
		return true, nil
	}
	return false, errShort
}

func (r *response) feedPrefix(b []byte) (int, error) {
	n := min(len(b), wire.PrefixLen-len(r.buf))
	r.buf = append(r.buf, b[:n]...)
	if len(r.buf) < wire.PrefixLen {
		return n, nil
	}
	p := wire.Prefix(r.buf)
	if !p.Valid() {
		// Not one of ours: a real program. Count what it sends until it closes.
		r.status, r.close, r.phase = 200, true, phaseUntilEOF
		return n, nil
	}
	if p.Length() < wire.PrefixLen {
		return n, errMalformed
	}
	r.status = int(p.Status())
	r.setServer(p.ID())
	r.remain = int64(p.Length()) - wire.PrefixLen
	r.phase = phaseBody
	if r.remain == 0 {
		r.phase = phaseDone
	}
	return n, nil
}

var crlfcrlf = []byte("\r\n\r\n")

// feedHTTPHeader finds the end of the header block, from b alone when it
// holds the whole block (the usual case), else across reads in r.buf.
func (r *response) feedHTTPHeader(b []byte) (int, error) {
	block := b
	var n int
	if len(r.buf) == 0 {
		i := bytes.Index(b, crlfcrlf)
		if i < 0 {
			r.buf = append(r.buf, b...)
			return len(b), r.checkHeaderSize()
		}
		block, n = b[:i+4], i+4
	} else {
		start := max(0, len(r.buf)-3)
		r.buf = append(r.buf, b...)
		i := bytes.Index(r.buf[start:], crlfcrlf)
		if i < 0 {
			return len(b), r.checkHeaderSize()
		}
		end := start + i + 4
		n = len(b) - (len(r.buf) - end)
		block = r.buf[:end]
	}
	if err := r.parseHTTPHeader(block); err != nil {
		return n, err
	}
	r.buf = r.buf[:0]
	return n, nil
}

func (r *response) checkHeaderSize() error {
	if len(r.buf) > maxHeaderBytes {
		return errMalformed
	}
	return nil
}

// parseHTTPHeader reads the status line and the headers that matter: the
// body length, the connection's fate and the real server's name.
func (r *response) parseHTTPHeader(block []byte) error {
	line, rest, _ := bytes.Cut(block, []byte("\r\n"))
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || line[8] != ' ' {
		return errMalformed
	}
	code := 0
	for _, c := range line[9:12] {
		if c < '0' || c > '9' {
			return errMalformed
		}
		code = code*10 + int(c-'0')
	}
	r.status = code
	r.close = line[7] == '0' // HTTP/1.0 closes unless told otherwise; good enough here
	length, chunked := int64(-1), false
	for len(rest) > 0 {
		line, rest, _ = bytes.Cut(rest, []byte("\r\n"))
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue
		}
		value = bytes.TrimSpace(value)
		switch {
		case equalFold(name, "content-length"):
			v, ok := parseDecimal(value)
			if !ok {
				return errMalformed
			}
			length = v
		case equalFold(name, "transfer-encoding"):
			chunked = containsFold(value, "chunked")
		case equalFold(name, "connection"):
			if containsFold(value, "close") {
				r.close = true
			} else if containsFold(value, "keep-alive") {
				r.close = false
			}
		case len(r.header) > 0 && equalFold(name, r.header):
			r.setServer(value)
		}
	}
	switch {
	case code >= 100 && code < 200 && code != 101:
		r.status = 0 // an interim response: the real one follows
		return nil
	case code == 204 || code == 304:
		r.phase = phaseDone
	case chunked:
		r.phase = phaseChunkSize
	case length >= 0:
		r.remain, r.phase = length, phaseBody
		if length == 0 {
			r.phase = phaseDone
		}
	default:
		r.phase, r.close = phaseUntilEOF, true
	}
	return nil
}

func (r *response) feedChunkSize(b []byte) (int, error) {
	for i, c := range b {
		switch {
		case c == '\n':
			if r.chunkDigits == 0 {
				return i + 1, errMalformed
			}
			r.chunkDigits, r.chunkExt = 0, false
			if r.remain == 0 {
				r.phase, r.lineLen = phaseTrailer, 0
			} else {
				r.phase = phaseChunkData
			}
			return i + 1, nil
		case r.chunkExt || c == '\r':
		case c == ';' || c == ' ' || c == '\t':
			r.chunkExt = true
		default:
			d, ok := hexDigit(c)
			if !ok || r.chunkDigits >= 15 {
				return i, errMalformed
			}
			r.remain = r.remain<<4 | int64(d)
			r.chunkDigits++
		}
	}
	return len(b), nil
}

// feedLines skips the CRLF after chunk data, or trailer lines up to the empty one.
func (r *response) feedLines(b []byte) (int, error) {
	for i, c := range b {
		switch c {
		case '\r':
		case '\n':
			if r.phase == phaseChunkCRLF {
				if r.lineLen != 0 {
					return i, errMalformed
				}
				r.phase = phaseChunkSize
				return i + 1, nil
			}
			if r.lineLen == 0 {
				r.phase = phaseDone
				return i + 1, nil
			}
			r.lineLen = 0
		default:
			r.lineLen++
		}
	}
	return len(b), nil
}

func hexDigit(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

func parseDecimal(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var v int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int64(c-'0')
	}
	return v, true
}

// equalFold compares ASCII case-insensitively; lower is already lower case.
func equalFold(b []byte, lower string) bool {
	if len(b) != len(lower) {
		return false
	}
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

func containsFold(b []byte, lower string) bool {
	for i := 0; i+len(lower) <= len(b); i++ {
		if equalFold(b[i:i+len(lower)], lower) {
			return true
		}
	}
	return false
}
