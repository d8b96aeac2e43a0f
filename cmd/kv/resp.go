package main

import (
	"bytes"
	"fmt"
)

// The RESP2 request parser. It is incremental: Parse takes whatever bytes
// have arrived (one received segment at a time), keeps its state between
// calls, and says when a whole request is there. An argument that lies
// inside the bytes given to Parse is a view of them (parsed in place, no
// copy); one split across calls is copied, the small ones into the parser's
// arena, a large bulk into a buffer of its own that the store may adopt as
// the value. Detach copies the views still pointing into the caller's
// bytes before the caller gives them back.
//
// Both of Redis's request forms are read: the multibulk form
// (*N\r\n$L\r\n...) that clients send, and the inline form (a line of
// space-separated words, with Redis's quoting) that redis-benchmark's
// PING_INLINE and a person at a terminal send. Malformed headers, a bulk
// length above MaxBulk or below zero, an inline line longer than 64 KiB or
// with unbalanced quotes, and a request larger than MaxRequest are
// protocol errors; after one the parser is dead, as the connection is
// about to be closed.

// maxMultibulk is Redis's own limit on the arguments of one request.
const maxMultibulk = 1024 * 1024

// argOverhead is what each argument costs the request bound besides its
// bytes: its slot in the argument tables.
const argOverhead = 32

// bigBulk is the size above which a bulk split across segments gets a
// buffer of its own, grown as it arrives (at most bigStep at a time beyond
// what has arrived), rather than a place in the arena.
const (
	bigBulk = 16 << 10
	bigStep = 1 << 20
)

// maxInline is the longest inline request line (Redis's
// PROTO_INLINE_MAX_SIZE).
const maxInline = 64 << 10

// maxDigits is the most digits of a length field: 18 cannot overflow an
// int64, and every length the bounds allow has fewer.
const maxDigits = 18

// ProtocolError is a request the parser refuses. Its Error is the text
// Redis sends: "Protocol error: ...".
type ProtocolError struct{ msg string }

func (e *ProtocolError) Error() string { return "Protocol error: " + e.msg }

var (
	errMultibulkLen = &ProtocolError{"invalid multibulk length"}
	errBulkLen      = &ProtocolError{"invalid bulk length"}
	errBulkEnd      = &ProtocolError{"expected CRLF after bulk data"}
)

type pstate uint8

const (
	stStart    pstate = iota // a request begins: expect '*'
	stCount                  // the multibulk count's digits
	stCountLF                // '\n' after the count
	stDollar                 // expect '$'
	stBulkLen                // the bulk length's digits
	stBulkLF                 // '\n' after the bulk length
	stBulkData               // the bulk's bytes
	stBulkCR                 // '\r' after the bulk
	stBulkLF2                // '\n' after the bulk
	stInline                 // an inline request's line
	stDead                   // after a protocol error
)

// where says where an argument's bytes are.
type where uint8

const (
	inCaller where = iota // a view of the bytes given to Parse
	inArena               // arena[off:off+n]
	inBig                 // a buffer of its own (b)
)

type arg struct {
	b      []byte
	off, n int
	w      where
}

// Parser parses RESP2 requests. The zero value is not ready: set MaxBulk
// and MaxRequest (NewParser does).
type Parser struct {
	MaxBulk    int // the largest bulk string accepted (-maxvalue)
	MaxRequest int // the largest request: its bulk bytes plus argOverhead per argument

	// Discard makes the parser check requests without keeping their
	// arguments (the guard in front of redcon): Args then returns nil.
	Discard bool

	st     pstate
	num    int64 // the length being read
	neg    bool
	digits int
	count  int // arguments announced
	left   int // bytes of the current bulk still to come
	blen   int // the current bulk's length
	size   int // the request's size so far, for MaxRequest
	args   []arg
	arena  []byte
	big    []byte // the current large bulk, when it has one
	out    [][]byte
	err    error
}

// NewParser returns a parser with the given bounds.
func NewParser(maxBulk, maxRequest int) *Parser {
	return &Parser{MaxBulk: maxBulk, MaxRequest: maxRequest}
}

// Err returns the protocol error that killed the parser, or nil.
func (p *Parser) Err() error { return p.err }

// InRequest reports whether part of a request has been read: a connection
// that closes then has sent a request that never ended.
func (p *Parser) InRequest() bool { return p.st != stStart }

// Pinned is the memory the parser holds beyond its fixed size: the arena,
// the large bulk in progress and the argument tables.
func (p *Parser) Pinned() int {
	return cap(p.arena) + cap(p.big) + cap(p.args)*argOverhead
}

func (p *Parser) fail(err *ProtocolError) (int, bool, error) {
	p.st = stDead
	p.err = err
	return 0, false, err
}

// Parse reads a request from b. It returns how many bytes it consumed and
// whether a request is complete; when it is, Args returns it and the next
// Parse (on b[n:]) starts the next request. When it is not, all of b was
// consumed: the caller calls Detach before b's memory goes, then Parse
// again with the next bytes. A *ProtocolError ends everything.
//
//demixdp:hotpath — allocates nothing for a request wholly inside b.
func (p *Parser) Parse(b []byte) (n int, done bool, err error) {
	if p.st == stDead {
		return 0, false, p.err
	}
	i := 0
	for i < len(b) {
		c := b[i]
		switch p.st {
		case stStart:
			p.args = p.args[:0]
			p.arena = p.arena[:0]
			p.size = 0
			if c != '*' {
				p.st = stInline
				continue
			}
			p.st, p.num, p.neg, p.digits = stCount, 0, false, 0
			i++
		case stInline:
			j := i
			for j < len(b) && b[j] != '\n' {
				j++
			}
			if len(p.arena)+(j-i) > maxInline {
				return p.fail(&ProtocolError{"too big inline request"})
			}
			p.arena = append(p.arena, b[i:j]...)
			if j == len(b) {
				i = j
				continue
			}
			i = j + 1
			if !p.splitInline() {
				return p.fail(&ProtocolError{"unbalanced quotes in request"})
			}
			p.st = stStart
			if len(p.args) == 0 {
				continue // an empty line: nothing to do
			}
			return i, true, nil
		case stCount, stBulkLen:
			if c == '\r' {
				if p.digits == 0 || (p.neg && p.num == 0) {
					if p.st == stCount {
						return p.fail(errMultibulkLen)
					}
					return p.fail(errBulkLen)
				}
				if p.st == stCount {
					p.st = stCountLF
				} else {
					p.st = stBulkLF
				}
				i++
				continue
			}
			if c == '-' && p.digits == 0 && !p.neg {
				p.neg = true
				i++
				continue
			}
			// No sign after digits, no leading zero, at most 18 digits
			// (no overflow): Redis's string2ll refuses the same.
			if c < '0' || c > '9' || p.digits >= maxDigits || (p.digits > 0 && p.num == 0) {
				if p.st == stCount {
					return p.fail(errMultibulkLen)
				}
				return p.fail(errBulkLen)
			}
			p.num = p.num*10 + int64(c-'0')
			p.digits++
			i++
		case stCountLF:
			if c != '\n' {
				return p.fail(errMultibulkLen)
			}
			i++
			if p.neg || p.num == 0 {
				// *0 and *-1 are empty requests: Redis skips them.
				p.st = stStart
				continue
			}
			if p.num > maxMultibulk || p.num*argOverhead > int64(p.MaxRequest) {
				return p.fail(errMultibulkLen)
			}
			p.count = int(p.num)
			p.size = p.count * argOverhead
			p.st = stDollar
		case stDollar:
			if c != '$' {
				return p.fail(&ProtocolError{fmt.Sprintf("expected '$', got '%c'", c)})
			}
			p.st, p.num, p.neg, p.digits = stBulkLen, 0, false, 0
			i++
		case stBulkLF:
			if c != '\n' {
				return p.fail(errBulkLen)
			}
			i++
			if p.neg || p.num > int64(p.MaxBulk) {
				return p.fail(errBulkLen)
			}
			p.blen, p.left = int(p.num), int(p.num)
			p.size += p.blen
			if p.size > p.MaxRequest {
				return p.fail(&ProtocolError{fmt.Sprintf("request larger than %d bytes", p.MaxRequest)})
			}
			p.st = stBulkData
			if p.Discard {
				continue
			}
			if len(b)-i >= p.blen {
				// The whole bulk is here: a view, no copy.
				p.args = append(p.args, arg{b: b[i : i+p.blen : i+p.blen], n: p.blen, w: inCaller})
				i += p.blen
				p.left = 0
				p.st = stBulkCR
				continue
			}
			// Split across segments: the request spans them, so copy its
			// earlier arguments now, before this bulk's bytes follow them
			// in the arena.
			p.Detach()
			if p.blen > bigBulk {
				p.big = make([]byte, 0, min(p.blen, bigStep))
				p.args = append(p.args, arg{n: p.blen, w: inBig})
			} else {
				p.args = append(p.args, arg{off: len(p.arena), n: p.blen, w: inArena})
			}
		case stBulkData:
			if p.left == 0 {
				p.st = stBulkCR
				continue
			}
			k := min(p.left, len(b)-i)
			if !p.Discard {
				if p.big != nil {
					if len(p.big)+k > cap(p.big) {
						nb := make([]byte, len(p.big), min(p.blen, max(2*cap(p.big), len(p.big)+k)))
						copy(nb, p.big)
						p.big = nb
					}
					p.big = append(p.big, b[i:i+k]...)
				} else {
					p.arena = append(p.arena, b[i:i+k]...)
				}
			}
			p.left -= k
			i += k
			if p.left == 0 {
				if p.big != nil {
					p.args[len(p.args)-1].b = p.big
					p.big = nil
				}
				p.st = stBulkCR
			}
		case stBulkCR:
			if c != '\r' {
				return p.fail(errBulkEnd)
			}
			p.st = stBulkLF2
			i++
		case stBulkLF2:
			if c != '\n' {
				return p.fail(errBulkEnd)
			}
			i++
			p.count--
			if p.count > 0 {
				p.st = stDollar
				continue
			}
			p.st = stStart
			return i, true, nil
		}
	}
	return i, false, nil
}

// Args returns the arguments of the request Parse just completed. The
// slices are valid until the next Parse or Detach (a view of the caller's
// bytes, until those go); Owned says which may be kept.
func (p *Parser) Args() [][]byte {
	if p.Discard {
		return nil
	}
	p.out = p.out[:0]
	for _, a := range p.args {
		switch a.w {
		case inArena:
			p.out = append(p.out, p.arena[a.off:a.off+a.n:a.off+a.n])
		default:
			p.out = append(p.out, a.b)
		}
	}
	return p.out
}

// Owned reports whether argument i of the request just completed is a
// buffer of its own that the caller may keep (adopt) without copying; it
// then belongs to the caller, and the parser forgets it.
func (p *Parser) Owned(i int) bool {
	if i >= len(p.args) || p.args[i].w != inBig {
		return false
	}
	p.args[i] = arg{}
	return true
}

// Detach copies the arguments of the request in progress that are views
// of the bytes last given to Parse into the arena, so that the caller may
// give those bytes back.
func (p *Parser) Detach() {
	for i := range p.args {
		a := &p.args[i]
		if a.w == inCaller {
			off := len(p.arena)
			p.arena = append(p.arena, a.b...)
			*a = arg{off: off, n: a.n, w: inArena}
		}
	}
}

// Release drops memory kept from large requests (a big arena, a long
// argument table), so that an idle connection pins little. Call it
// between requests.
func (p *Parser) Release() {
	if p.st != stStart {
		return
	}
	if cap(p.arena) > 64<<10 {
		p.arena = nil
	}
	if cap(p.args) > 1024 {
		p.args = nil
		p.out = nil
	}
}

// splitInline splits the inline line in the arena into arguments as
// Redis's sdssplitargs does: words separated by white space; "double
// quotes" with \n \r \t \b \a \xHH and \c escapes; 'single quotes' with
// \' only; a closing quote must end the word. The arguments are appended
// to the arena after the line. It reports false for unbalanced quotes.
func (p *Parser) splitInline() bool {
	line := len(p.arena)
	if line > 0 && p.arena[line-1] == '\r' {
		line--
	}
	if k := bytes.IndexByte(p.arena[:line], 0); k >= 0 {
		line = k // Redis reads the line as a C string
	}
	isSpace := func(c byte) bool { return c == ' ' || c == '\n' || c == '\r' || c == '\t' || c == '\v' || c == '\f' }
	i := 0
	for {
		for i < line && isSpace(p.arena[i]) {
			i++
		}
		if i == line {
			return true
		}
		start := len(p.arena)
		inq, insq := false, false
	word:
		for {
			if i == line {
				if inq || insq {
					return false // unterminated quotes
				}
				break
			}
			c := p.arena[i]
			switch {
			case inq:
				if c == '\\' && i+3 < line && p.arena[i+1] == 'x' && isHex(p.arena, i+2, line) && isHex(p.arena, i+3, line) {
					p.arena = append(p.arena, unhex(p.arena[i+2])<<4|unhex(p.arena[i+3]))
					i += 4
					continue
				}
				if c == '\\' && i+1 < line {
					i++
					e := p.arena[i]
					switch e {
					case 'n':
						e = '\n'
					case 'r':
						e = '\r'
					case 't':
						e = '\t'
					case 'b':
						e = '\b'
					case 'a':
						e = '\a'
					}
					p.arena = append(p.arena, e)
					i++
					continue
				}
				if c == '"' {
					if i+1 < line && !isSpace(p.arena[i+1]) {
						return false
					}
					i++
					break word
				}
				p.arena = append(p.arena, c)
				i++
			case insq:
				if c == '\\' && i+1 < line && p.arena[i+1] == '\'' {
					p.arena = append(p.arena, '\'')
					i += 2
					continue
				}
				if c == '\'' {
					if i+1 < line && !isSpace(p.arena[i+1]) {
						return false
					}
					i++
					break word
				}
				p.arena = append(p.arena, c)
				i++
			default:
				switch {
				case isSpace(c):
					break word
				case c == '"':
					inq = true
				case c == '\'':
					insq = true
				default:
					p.arena = append(p.arena, c)
				}
				i++
			}
		}
		n := len(p.arena) - start
		p.size += n + argOverhead
		p.args = append(p.args, arg{off: start, n: n, w: inArena})
	}
}

func isHex(b []byte, i, end int) bool {
	if i >= end {
		return false
	}
	c := b[i]
	return ('0' <= c && c <= '9') || ('a' <= c && c <= 'f') || ('A' <= c && c <= 'F')
}

func unhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}
