package main

import (
	"strconv"
	"strings"
)

// RESP2 reply encoding. The headers ("+OK\r\n", ":12\r\n", "$5\r\n") are
// built in a small array on the stack and handed to a sink; the queue
// server's sink copies them into SGAs, BufReply's into a slice.

// header appends the RESP line prefix+n+CRLF to dst.
func header(dst []byte, prefix byte, n int64) []byte {
	dst = append(dst, prefix)
	dst = strconv.AppendInt(dst, n, 10)
	return append(dst, '\r', '\n')
}

// oneLine makes s safe for a status or error line, as Redis does: line
// breaks become spaces.
func oneLine(s string) string {
	if strings.ContainsAny(s, "\r\n") {
		return strings.Map(func(r rune) rune {
			if r == '\r' || r == '\n' {
				return ' '
			}
			return r
		}, s)
	}
	return s
}

// BufReply is a Reply that appends the encoded reply to B: the tests' and
// the fuzz target's writer, and the reference for the SGA writer.
type BufReply struct{ B []byte }

func (w *BufReply) Status(s string) {
	w.B = append(append(append(w.B, '+'), oneLine(s)...), '\r', '\n')
}

func (w *BufReply) Error(s string) {
	w.B = append(append(append(w.B, '-'), oneLine(s)...), '\r', '\n')
}

func (w *BufReply) Int(n int64) { w.B = header(w.B, ':', n) }

func (w *BufReply) Bulk(b []byte) {
	w.B = append(append(header(w.B, '$', int64(len(b))), b...), '\r', '\n')
}

func (w *BufReply) Value(v []byte) { w.Bulk(v) }

func (w *BufReply) BulkString(s string) {
	w.B = append(append(header(w.B, '$', int64(len(s))), s...), '\r', '\n')
}

func (w *BufReply) Null() { w.B = append(w.B, "$-1\r\n"...) }

func (w *BufReply) Array(n int) { w.B = header(w.B, '*', int64(n)) }
