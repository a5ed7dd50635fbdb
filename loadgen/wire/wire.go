// Package wire holds what the load generator and the built-in real servers
// agree on: the service kinds, the request header a tcp/udp request starts
// with, and the identity prefix every tcp/udp response starts with.
//
// The prefix is how the client side learns which real server answered, in
// every forwarding method: in DR and TUN the replies bypass the director, so
// only the client can count what each real server served. HTTP responses
// carry the same identity in a header (ServerHeader).
package wire

import (
	"encoding/binary"
	"fmt"
)

// Kind is the application protocol a load phase speaks and a real server answers.
type Kind uint8

const (
	HTTP Kind = iota // HTTP/1.1
	TCP              // connect, request bytes, response bytes, close
	UDP              // one request datagram, one response datagram
)

var kindNames = [...]string{HTTP: "http", TCP: "tcp", UDP: "udp"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// ParseKind reads "http", "tcp" or "udp".
func ParseKind(s string) (Kind, error) {
	for k, name := range kindNames {
		if s == name {
			return Kind(k), nil
		}
	}
	return 0, fmt.Errorf("unknown kind %q (want http, tcp or udp)", s)
}

// ServerHeader is the HTTP response header that names the real server.
const ServerHeader = "X-Real-Server"

// Request is a view over the header a tcp or udp request starts with:
//
//	0      4        8       12     16
//	| LVSQ | length | flags | seq  |
//
// length counts the whole request, header included; the rest is padding the
// server reads and discards. All integers are big-endian.
type Request []byte

const (
	RequestLen = 16

	reqMagic  = 0
	reqLength = 4
	reqFlags  = 8
	reqSeq    = 12

	// FlagKeepAlive asks the server to keep the connection open after the response.
	FlagKeepAlive = 1 << 0
)

var requestMagic = [4]byte{'L', 'V', 'S', 'Q'}

// PutRequest writes a request header into b[:RequestLen].
func PutRequest(b []byte, length, flags, seq uint32) {
	_ = b[RequestLen-1]
	copy(b[reqMagic:], requestMagic[:])
	binary.BigEndian.PutUint32(b[reqLength:], length)
	binary.BigEndian.PutUint32(b[reqFlags:], flags)
	binary.BigEndian.PutUint32(b[reqSeq:], seq)
}

// Valid reports whether r is long enough and starts with the request magic.
func (r Request) Valid() bool {
	return len(r) >= RequestLen && [4]byte(r[reqMagic:]) == requestMagic
}

func (r Request) Length() uint32 { return binary.BigEndian.Uint32(r[reqLength:]) }
func (r Request) Flags() uint32  { return binary.BigEndian.Uint32(r[reqFlags:]) }
func (r Request) Seq() uint32    { return binary.BigEndian.Uint32(r[reqSeq:]) }

// Prefix is a view over the fixed-layout identity prefix of a tcp or udp response:
//
//	0      4        8     12       14     15    16           40
//	| LVSR | length | seq | status | idlen | 0  | id (padded) |
//
// length counts the whole response, prefix included; seq echoes the
// request's; status is 200 for a served request (an HTTP-like code otherwise,
// so error-status faults work over tcp and udp too).
type Prefix []byte

const (
	PrefixLen = 40
	MaxIDLen  = 24

	pfxMagic  = 0
	pfxLength = 4
	pfxSeq    = 8
	pfxStatus = 12
	pfxIDLen  = 14
	pfxID     = 16
)

var prefixMagic = [4]byte{'L', 'V', 'S', 'R'}

// PutPrefix writes a response prefix into b[:PrefixLen]. An id longer than
// MaxIDLen is cut.
func PutPrefix(b []byte, length, seq uint32, status uint16, id string) {
	_ = b[PrefixLen-1]
	copy(b[pfxMagic:], prefixMagic[:])
	binary.BigEndian.PutUint32(b[pfxLength:], length)
	binary.BigEndian.PutUint32(b[pfxSeq:], seq)
	binary.BigEndian.PutUint16(b[pfxStatus:], status)
	n := copy(b[pfxID:PrefixLen], id)
	clear(b[pfxID+n : PrefixLen])
	b[pfxIDLen] = byte(n)
	b[pfxIDLen+1] = 0
}

// Valid reports whether p is long enough, starts with the prefix magic and
// has a sane id length.
func (p Prefix) Valid() bool {
	return len(p) >= PrefixLen && [4]byte(p[pfxMagic:]) == prefixMagic && p[pfxIDLen] <= MaxIDLen
}

func (p Prefix) Length() uint32 { return binary.BigEndian.Uint32(p[pfxLength:]) }
func (p Prefix) Seq() uint32    { return binary.BigEndian.Uint32(p[pfxSeq:]) }
func (p Prefix) Status() uint16 { return binary.BigEndian.Uint16(p[pfxStatus:]) }

// ID is the real server's name; it aliases p.
func (p Prefix) ID() []byte { return p[pfxID : pfxID+int(p[pfxIDLen])] }

// MaybeRequest reports whether b, the first bytes read of a request, can
// still be the start of a request header.
func MaybeRequest(b []byte) bool {
	n := min(len(b), len(requestMagic))
	return string(b[:n]) == string(requestMagic[:n])
}
