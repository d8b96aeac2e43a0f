package main

import (
	"bytes"
	"fmt"
	"math"
	"net/netip"
	"path"
	"slices"
	"strconv"
	"strings"
)

// The commands, shared by both servers. Each answers as Redis 7 does, error
// texts included: the lab test runs one redis-cli script against kv and
// against redis-server and compares the replies.

// Reply receives a command's reply in RESP2. The queue server encodes it
// straight into the SGAs it pushes; the net server hands it to redcon.
type Reply interface {
	Status(s string) // +s
	Error(s string)  // -s
	Int(n int64)     // :n
	// Bulk sends b, an argument of the request or other bytes that may
	// change once the command returns: the writer copies it at once.
	Bulk(b []byte)
	// Value sends a stored value as a bulk string. Stored values never
	// change in place, so the writer may refer to v until it is sent
	// instead of copying it now.
	Value(v []byte)
	BulkString(s string)
	Null()       // $-1
	Array(n int) // *n, then n replies
}

// Client is what the server keeps per connection for the commands.
type Client struct {
	ID            int64 // unique in the server (CLIENT ID)
	Name          []byte
	Remote, Local netip.AddrPort // the connection's addresses (CLIENT INFO)
	Queue         int            // the NIC queue whose loop serves it (CLIENT INFO)
	// Quit is set by QUIT: close once the reply is sent.
	Quit bool
}

// Args gives a command its arguments and, for a value argument, whether
// the command may keep that slice as it is (it owns it: the parser's own
// buffer for a large bulk) instead of copying it.
type Args struct {
	V [][]byte
	// Own reports whether V[i] may be kept; nil means never.
	Own func(i int) bool
}

type command struct {
	name  string // lower case, as Redis names it in errors
	arity int    // Redis's: n exactly, -n at least n
	run   func(x *Session, c *Client, a *Args, r Reply)
}

var commands map[string]*command

func init() {
	list := []*command{
		{"ping", -1, cmdPing}, {"echo", 2, cmdEcho}, {"quit", -1, cmdQuit}, {"select", 2, cmdSelect},
		{"set", -3, cmdSet}, {"get", 2, cmdGet}, {"getset", 3, cmdGetset}, {"del", -2, cmdDel},
		{"exists", -2, cmdExists}, {"incr", 2, cmdIncr}, {"decr", 2, cmdDecr}, {"incrby", 3, cmdIncrby},
		{"decrby", 3, cmdDecrby}, {"append", 3, cmdAppend}, {"strlen", 2, cmdStrlen}, {"mget", -2, cmdMget},
		{"mset", -3, cmdMset}, {"expire", -3, cmdExpire}, {"pexpire", -3, cmdPexpire}, {"ttl", 2, cmdTTL},
		{"pttl", 2, cmdPTTL}, {"persist", 2, cmdPersist}, {"dbsize", 1, cmdDbsize}, {"flushall", -1, cmdFlushall},
		{"flushdb", -1, cmdFlushall}, {"command", -1, cmdCommand}, {"config", -2, cmdConfig}, {"info", -1, cmdInfo},
		{"client", -2, cmdClient},
	}
	commands = make(map[string]*command, len(list))
	for _, c := range list {
		commands[c.name] = c
	}
}

// lower writes name in lower case into buf (if it fits) for the table
// lookup; a longer name is no command.
func lower(buf *[24]byte, name []byte) ([]byte, bool) {
	if len(name) > len(buf) {
		return nil, false
	}
	for i, c := range name {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		buf[i] = c
	}
	return buf[:len(name)], true
}

// Exec runs one command (a.V[0] is its name) and writes its reply to r.
//
//demixdp:hotpath — GET, SET, INCR, PING allocate only what they store.
func (x *Session) Exec(c *Client, a *Args, r Reply) {
	bump(&x.commands)
	var buf [24]byte
	var cmd *command
	if name, ok := lower(&buf, a.V[0]); ok {
		cmd = commands[string(name)]
	}
	if cmd == nil {
		bump(&x.unknown)
		x.errorf(r, "ERR unknown command '%s', with args beginning with: %s", sanitize(a.V[0], 128), argsBeginning(a.V[1:]))
		return
	}
	if (cmd.arity > 0 && len(a.V) != cmd.arity) || len(a.V) < -cmd.arity {
		x.arityError(r, cmd.name)
		return
	}
	cmd.run(x, c, a, r)
}

func (x *Session) errorf(r Reply, format string, args ...any) {
	bump(&x.errors)
	r.Error(fmt.Sprintf(format, args...))
}

func (x *Session) err(r Reply, s string) {
	bump(&x.errors)
	r.Error(s)
}

func (x *Session) arityError(r Reply, name string) {
	x.errorf(r, "ERR wrong number of arguments for '%s' command", name)
}

// sanitize is how Redis prints an argument in an error: at most max bytes,
// up to a NUL byte (C's %s), line breaks turned into spaces.
func sanitize(b []byte, max int) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	if len(b) > max {
		b = b[:max]
	}
	return strings.Map(func(r rune) rune {
		if r == '\r' || r == '\n' {
			return ' '
		}
		return r
	}, string(b))
}

// argsBeginning lists the first arguments as Redis's unknown-command error
// does: "'a' 'b' ", stopping once 128 bytes are written.
func argsBeginning(args [][]byte) string {
	var sb strings.Builder
	for _, a := range args {
		if sb.Len() >= 128 {
			break
		}
		sb.WriteString("'" + sanitize(a, 128-sb.Len()) + "' ")
	}
	return sb.String()
}

const (
	errSyntax  = "ERR syntax error"
	errNotInt  = "ERR value is not an integer or out of range"
	errOverflw = "ERR increment or decrement would overflow"
)

// parseInt is Redis's string2ll: an optional '-', no '+', no leading zero,
// no space, within int64.
func parseInt(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) >= 21 {
		return 0, false
	}
	if len(b) == 1 && b[0] == '0' {
		return 0, true
	}
	neg := false
	if b[0] == '-' {
		neg = true
		b = b[1:]
		if len(b) == 0 {
			return 0, false
		}
	}
	if b[0] < '1' || b[0] > '9' {
		return 0, false
	}
	var v uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		if v > math.MaxUint64/10 {
			return 0, false
		}
		v *= 10
		if v > math.MaxUint64-uint64(c-'0') {
			return 0, false
		}
		v += uint64(c - '0')
	}
	if neg {
		if v > uint64(math.MaxInt64)+1 {
			return 0, false
		}
		return -int64(v), true
	}
	if v > math.MaxInt64 {
		return 0, false
	}
	return int64(v), true
}

func cmdPing(x *Session, c *Client, a *Args, r Reply) {
	switch len(a.V) {
	case 1:
		r.Status("PONG")
	case 2:
		r.Bulk(a.V[1])
	default:
		x.arityError(r, "ping")
	}
}

func cmdEcho(x *Session, c *Client, a *Args, r Reply) { r.Bulk(a.V[1]) }

func cmdQuit(x *Session, c *Client, a *Args, r Reply) {
	c.Quit = true
	r.Status("OK")
}

func cmdSelect(x *Session, c *Client, a *Args, r Reply) {
	id, ok := parseInt(a.V[1])
	if !ok || id < math.MinInt32 || id > math.MaxInt32 {
		x.err(r, errNotInt)
		return
	}
	if id != 0 {
		x.err(r, "ERR DB index is out of range")
		return
	}
	r.Status("OK")
}

func eqFold(b []byte, s string) bool { return len(b) == len(s) && strings.EqualFold(string(b), s) }

// SET flags.
const (
	setNX = 1 << iota
	setXX
	setGet
	setKeepTTL
	setEX
	setPX
	setEXAT
	setPXAT
)

func cmdSet(x *Session, c *Client, a *Args, r Reply) {
	flags := 0
	var expArg []byte
	for j := 3; j < len(a.V); j++ {
		opt := a.V[j]
		hasNext := j+1 < len(a.V)
		const expiring = setEX | setPX | setEXAT | setPXAT
		switch {
		case eqFold(opt, "nx") && flags&setXX == 0:
			flags |= setNX
		case eqFold(opt, "xx") && flags&setNX == 0:
			flags |= setXX
		case eqFold(opt, "get"):
			flags |= setGet
		case eqFold(opt, "keepttl") && flags&expiring == 0:
			flags |= setKeepTTL
		case eqFold(opt, "ex") && flags&(setKeepTTL|setPX|setEXAT|setPXAT) == 0 && hasNext:
			flags |= setEX
			j++
			expArg = a.V[j]
		case eqFold(opt, "px") && flags&(setKeepTTL|setEX|setEXAT|setPXAT) == 0 && hasNext:
			flags |= setPX
			j++
			expArg = a.V[j]
		case eqFold(opt, "exat") && flags&(setKeepTTL|setEX|setPX|setPXAT) == 0 && hasNext:
			flags |= setEXAT
			j++
			expArg = a.V[j]
		case eqFold(opt, "pxat") && flags&(setKeepTTL|setEX|setPX|setEXAT) == 0 && hasNext:
			flags |= setPXAT
			j++
			expArg = a.V[j]
		default:
			x.err(r, errSyntax)
			return
		}
	}
	st := x.db.Store
	now := st.now()
	var exp int64
	if expArg != nil {
		ms, ok := parseInt(expArg)
		if !ok {
			x.err(r, errNotInt)
			return
		}
		seconds := flags&(setEX|setEXAT) != 0
		if ms <= 0 || (seconds && ms > math.MaxInt64/1000) {
			x.errorf(r, "ERR invalid expire time in 'set' command")
			return
		}
		if seconds {
			ms *= 1000
		}
		if flags&(setEX|setPX) != 0 {
			ms += now // wraps negative on overflow, as in Redis
		}
		if ms <= 0 {
			x.errorf(r, "ERR invalid expire time in 'set' command")
			return
		}
		exp = ms
	}
	val := x.value(a, 2) // copied before the lock is taken
	sh := st.lock(a.V[1])
	old, found := sh.lookup(a.V[1], now)
	set := !(flags&setNX != 0 && found) && !(flags&setXX != 0 && !found)
	if set {
		if flags&setKeepTTL != 0 && found {
			exp = old.exp
		}
		sh.put(a.V[1], val, exp)
	}
	sh.mu.Unlock()
	switch {
	case flags&setGet != 0 && found:
		r.Value(old.val)
	case flags&setGet != 0 || !set:
		r.Null()
	default:
		r.Status("OK")
	}
}

// value returns argument i as a value the store may keep.
func (x *Session) value(a *Args, i int) []byte {
	if a.Own != nil && a.Own(i) {
		bump(&x.adopted)
		return a.V[i]
	}
	return bytes.Clone(a.V[i])
}

// get returns key's value, if it has one.
func (x *Session) get(key []byte) (entry, bool) {
	st := x.db.Store
	now := st.now()
	sh := st.lock(key)
	e, ok := sh.lookup(key, now)
	sh.mu.Unlock()
	return e, ok
}

func cmdGet(x *Session, c *Client, a *Args, r Reply) {
	if e, ok := x.get(a.V[1]); ok {
		r.Value(e.val)
	} else {
		r.Null()
	}
}

func cmdGetset(x *Session, c *Client, a *Args, r Reply) {
	st := x.db.Store
	now := st.now()
	val := x.value(a, 2)
	sh := st.lock(a.V[1])
	old, found := sh.lookup(a.V[1], now)
	sh.put(a.V[1], val, 0)
	sh.mu.Unlock()
	if found {
		r.Value(old.val)
	} else {
		r.Null()
	}
}

// cmdDel and cmdExists lock every shard their keys are in, at once: the
// command is atomic, as in Redis.
func cmdDel(x *Session, c *Client, a *Args, r Reply) {
	st := x.db.Store
	now, n := st.now(), int64(0)
	mask := st.maskOf(a.V[1:])
	st.lockMask(mask)
	for _, k := range a.V[1:] {
		if st.shardFor(k).del(k, now) {
			n++
		}
	}
	st.unlockMask(mask)
	r.Int(n)
}

func cmdExists(x *Session, c *Client, a *Args, r Reply) {
	st := x.db.Store
	now, n := st.now(), int64(0)
	mask := st.maskOf(a.V[1:])
	st.lockMask(mask)
	for _, k := range a.V[1:] {
		if _, ok := st.shardFor(k).lookup(k, now); ok {
			n++
		}
	}
	st.unlockMask(mask)
	r.Int(n)
}

func cmdIncr(x *Session, c *Client, a *Args, r Reply) { x.incr(a.V[1], 1, r) }
func cmdDecr(x *Session, c *Client, a *Args, r Reply) { x.incr(a.V[1], -1, r) }

func cmdIncrby(x *Session, c *Client, a *Args, r Reply) {
	by, ok := parseInt(a.V[2])
	if !ok {
		x.err(r, errNotInt)
		return
	}
	x.incr(a.V[1], by, r)
}

func cmdDecrby(x *Session, c *Client, a *Args, r Reply) {
	by, ok := parseInt(a.V[2])
	if !ok {
		x.err(r, errNotInt)
		return
	}
	if by == math.MinInt64 {
		x.err(r, "ERR decrement would overflow")
		return
	}
	x.incr(a.V[1], -by, r)
}

// incr adds by to key's integer value, keeping its expiry: the read, the
// sum and the write under the shard's lock, so that concurrent INCRs from
// different loops all count.
func (x *Session) incr(key []byte, by int64, r Reply) {
	st := x.db.Store
	now := st.now()
	buf := make([]byte, 0, 20) // the new value, allocated before the lock is taken
	sh := st.lock(key)
	e, found := sh.lookup(key, now)
	var v int64
	var fail string
	if found {
		var ok bool
		if v, ok = parseInt(e.val); !ok {
			fail = errNotInt
		}
	}
	if fail == "" && ((by < 0 && v < 0 && by < math.MinInt64-v) || (by > 0 && v > 0 && by > math.MaxInt64-v)) {
		fail = errOverflw
	}
	if fail == "" {
		v += by
		sh.put(key, strconv.AppendInt(buf, v, 10), e.exp)
	}
	sh.mu.Unlock()
	if fail != "" {
		x.err(r, fail)
		return
	}
	r.Int(v)
}

func cmdAppend(x *Session, c *Client, a *Args, r Reply) {
	st := x.db.Store
	now := st.now()
	sh := st.lock(a.V[1])
	e, found := sh.lookup(a.V[1], now)
	var n int64
	tooBig := false
	switch {
	case !found:
		// The value argument may be the parser's own buffer (adopted, no
		// copy) or a copy: made under the lock, as it is rare.
		sh.put(a.V[1], x.value(a, 2), 0)
		n = int64(len(a.V[2]))
	case len(e.val)+len(a.V[2]) > x.db.MaxValue:
		tooBig = true
	default:
		// append writes past the old length only: a reply still sending
		// the old value sees the same bytes.
		sh.put(a.V[1], append(e.val, a.V[2]...), e.exp)
		n = int64(len(e.val) + len(a.V[2]))
	}
	sh.mu.Unlock()
	if tooBig {
		x.err(r, "ERR string exceeds maximum allowed size (proto-max-bulk-len)")
		return
	}
	r.Int(n)
}

func cmdStrlen(x *Session, c *Client, a *Args, r Reply) {
	e, _ := x.get(a.V[1])
	r.Int(int64(len(e.val)))
}

// cmdMget reads every key with their shards locked at once (a consistent
// view, as Redis gives), then replies with the locks released.
func cmdMget(x *Session, c *Client, a *Args, r Reply) {
	st := x.db.Store
	now := st.now()
	keys := a.V[1:]
	x.got = x.got[:0]
	mask := st.maskOf(keys)
	st.lockMask(mask)
	for _, k := range keys {
		e, ok := st.shardFor(k).lookup(k, now)
		x.got = append(x.got, lookup{e.val, ok})
	}
	st.unlockMask(mask)
	r.Array(len(keys))
	for i, g := range x.got {
		if g.found {
			r.Value(g.val)
		} else {
			r.Null()
		}
		x.got[i] = lookup{}
	}
}

// cmdMset stores every pair with their shards locked at once: no client
// sees some of the keys set and not the others, as in Redis.
func cmdMset(x *Session, c *Client, a *Args, r Reply) {
	if len(a.V)%2 == 0 {
		x.arityError(r, "mset")
		return
	}
	st := x.db.Store
	x.vals = x.vals[:0]
	var mask uint64
	for i := 1; i < len(a.V); i += 2 {
		x.vals = append(x.vals, x.value(a, i+1)) // copied before the locks are taken
		mask |= 1 << st.shardOf(a.V[i])
	}
	st.lockMask(mask)
	for i := 1; i < len(a.V); i += 2 {
		st.shardFor(a.V[i]).put(a.V[i], x.vals[i/2], 0)
	}
	st.unlockMask(mask)
	clear(x.vals)
	r.Status("OK")
}

func cmdExpire(x *Session, c *Client, a *Args, r Reply)  { x.expire(a, r, true) }
func cmdPexpire(x *Session, c *Client, a *Args, r Reply) { x.expire(a, r, false) }

// EXPIRE flags.
const (
	expNX = 1 << iota
	expXX
	expGT
	expLT
)

func (x *Session) expire(a *Args, r Reply, seconds bool) {
	name := "pexpire"
	if seconds {
		name = "expire"
	}
	when, ok := parseInt(a.V[2])
	if !ok {
		x.err(r, errNotInt)
		return
	}
	flags := 0
	for _, opt := range a.V[3:] {
		switch {
		case eqFold(opt, "nx"):
			flags |= expNX
		case eqFold(opt, "xx"):
			flags |= expXX
		case eqFold(opt, "gt"):
			flags |= expGT
		case eqFold(opt, "lt"):
			flags |= expLT
		default:
			x.errorf(r, "ERR Unsupported option %s", sanitize(opt, 1<<20))
			return
		}
	}
	if flags&expNX != 0 && flags&(expXX|expGT|expLT) != 0 {
		x.err(r, "ERR NX and XX, GT or LT options at the same time are not compatible")
		return
	}
	if flags&expGT != 0 && flags&expLT != 0 {
		x.err(r, "ERR GT and LT options at the same time are not compatible")
		return
	}
	st := x.db.Store
	now := st.now()
	if seconds {
		if when > math.MaxInt64/1000 || when < math.MinInt64/1000 {
			x.errorf(r, "ERR invalid expire time in '%s' command", name)
			return
		}
		when *= 1000
	}
	if when > math.MaxInt64-now {
		x.errorf(r, "ERR invalid expire time in '%s' command", name)
		return
	}
	when += now
	n := st.lock(a.V[1]).expire(a.V[1], now, when, flags)
	r.Int(n)
}

// expire applies EXPIRE's decision to key, with the shard locked, and
// unlocks it; it returns the reply: 1 if the expiry was set (or the key
// deleted), 0 if not.
func (sh *shard) expire(key []byte, now, when int64, flags int) int64 {
	defer sh.mu.Unlock()
	e, found := sh.lookup(key, now)
	if !found {
		return 0
	}
	cur := e.exp
	if cur == 0 {
		cur = -1
	}
	switch {
	case flags&expNX != 0 && cur != -1,
		flags&expXX != 0 && cur == -1,
		flags&expGT != 0 && (when <= cur || cur == -1),
		flags&expLT != 0 && cur != -1 && when >= cur:
		return 0
	}
	if when <= now {
		sh.remove(string(key), e)
		return 1
	}
	sh.setExp(key, e, when)
	return 1
}

func cmdTTL(x *Session, c *Client, a *Args, r Reply)  { x.ttl(a.V[1], r, false) }
func cmdPTTL(x *Session, c *Client, a *Args, r Reply) { x.ttl(a.V[1], r, true) }

func (x *Session) ttl(key []byte, r Reply, ms bool) {
	now := x.db.Store.now()
	sh := x.db.Store.lock(key)
	e, found := sh.lookup(key, now)
	sh.mu.Unlock()
	switch {
	case !found:
		r.Int(-2)
	case e.exp == 0:
		r.Int(-1)
	default:
		t := max(e.exp-now, 0)
		if !ms {
			t = (t + 500) / 1000
		}
		r.Int(t)
	}
}

func cmdPersist(x *Session, c *Client, a *Args, r Reply) {
	st := x.db.Store
	now := st.now()
	sh := st.lock(a.V[1])
	e, found := sh.lookup(a.V[1], now)
	n := int64(0)
	if found && e.exp != 0 {
		sh.setExp(a.V[1], e, 0)
		n = 1
	}
	sh.mu.Unlock()
	r.Int(n)
}

func cmdDbsize(x *Session, c *Client, a *Args, r Reply) { r.Int(int64(x.db.Store.Len())) }

func cmdFlushall(x *Session, c *Client, a *Args, r Reply) {
	if len(a.V) > 2 || (len(a.V) == 2 && !eqFold(a.V[1], "sync") && !eqFold(a.V[1], "async")) {
		x.err(r, errSyntax)
		return
	}
	x.db.Store.Flush()
	r.Status("OK")
}

// cmdCommand answers COMMAND, COMMAND COUNT, COMMAND INFO and COMMAND DOCS
// enough for redis-cli and client libraries: the table's names and
// arities, no documentation.
func cmdCommand(x *Session, c *Client, a *Args, r Reply) {
	info := func(cmd *command) {
		r.Array(6)
		r.BulkString(cmd.name)
		r.Int(int64(cmd.arity))
		r.Array(0)
		first := int64(0)
		if cmd.name != "ping" && cmd.name != "echo" && cmd.name != "quit" && cmd.name != "select" && cmd.name != "dbsize" &&
			cmd.name != "flushall" && cmd.name != "flushdb" && cmd.name != "command" && cmd.name != "config" &&
			cmd.name != "info" && cmd.name != "client" {
			first = 1
		}
		last, step := first, first
		if cmd.name == "del" || cmd.name == "exists" || cmd.name == "mget" {
			last = -1
		}
		if cmd.name == "mset" {
			last, step = -1, 2
		}
		r.Int(first)
		r.Int(last)
		r.Int(step)
	}
	if len(a.V) == 1 {
		r.Array(len(commands))
		for _, cmd := range sortedCommands() {
			info(cmd)
		}
		return
	}
	switch {
	case eqFold(a.V[1], "count") && len(a.V) == 2:
		r.Int(int64(len(commands)))
	case eqFold(a.V[1], "info"):
		r.Array(len(a.V) - 2)
		var buf [24]byte
		for _, n := range a.V[2:] {
			var cmd *command
			if ln, ok := lower(&buf, n); ok {
				cmd = commands[string(ln)]
			}
			if cmd == nil {
				r.Null()
			} else {
				info(cmd)
			}
		}
	case eqFold(a.V[1], "docs"):
		r.Array(0)
	default:
		x.errorf(r, "ERR unknown subcommand '%s'. Try COMMAND HELP.", sanitize(a.V[1], 128))
	}
}

func sortedCommands() []*command {
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	slices.Sort(names)
	out := make([]*command, len(names))
	for i, n := range names {
		out[i] = commands[n]
	}
	return out
}

// configParams are the parameters CONFIG GET knows: what redis-benchmark
// and clients ask for.
var configParams = [][2]string{
	{"appendonly", "no"},
	{"databases", "1"},
	{"maxmemory", "0"},
	{"save", ""},
	{"timeout", "0"},
}

func cmdConfig(x *Session, c *Client, a *Args, r Reply) {
	switch {
	case eqFold(a.V[1], "get"):
		if len(a.V) < 3 {
			x.arityError(r, "config|get")
			return
		}
		var out [][2]string
		for _, p := range configParams {
			for _, pat := range a.V[2:] {
				if ok, _ := path.Match(strings.ToLower(string(pat)), p[0]); ok {
					out = append(out, p)
					break
				}
			}
		}
		r.Array(2 * len(out))
		for _, p := range out {
			r.BulkString(p[0])
			r.BulkString(p[1])
		}
	case eqFold(a.V[1], "set"), eqFold(a.V[1], "resetstat"), eqFold(a.V[1], "rewrite"):
		r.Status("OK")
	default:
		x.errorf(r, "ERR unknown subcommand '%s'. Try CONFIG HELP.", sanitize(a.V[1], 128))
	}
}

// Version is the Redis version kv reports in INFO.
const Version = "7.0.0"

func cmdInfo(x *Session, c *Client, a *Args, r Reply) {
	sc, volatile := x.db.Store.Counters()
	var b strings.Builder
	fmt.Fprintf(&b, "# Server\r\nredis_version:%s\r\nredis_mode:standalone\r\nserver_name:demixdp-kv\r\n\r\n", Version)
	fmt.Fprintf(&b, "# Stats\r\ntotal_commands_processed:%d\r\nexpired_keys:%d\r\n\r\n", x.db.Totals(-1).Commands, sc.ExpiredLazy+sc.ExpiredSweep)
	fmt.Fprintf(&b, "# Memory\r\nused_memory:%d\r\n\r\n", sc.ValueBytes)
	b.WriteString("# Keyspace\r\n")
	if sc.Keys > 0 {
		fmt.Fprintf(&b, "db0:keys=%d,expires=%d,avg_ttl=0\r\n", sc.Keys, volatile)
	}
	r.BulkString(b.String())
}

func cmdClient(x *Session, c *Client, a *Args, r Reply) {
	switch {
	case eqFold(a.V[1], "setname") && len(a.V) == 3:
		for _, ch := range a.V[2] {
			if ch < '!' || ch > '~' {
				x.err(r, "ERR Client names cannot contain spaces, newlines or special characters.")
				return
			}
		}
		c.Name = bytes.Clone(a.V[2])
		r.Status("OK")
	case eqFold(a.V[1], "getname") && len(a.V) == 2:
		if len(c.Name) == 0 {
			r.Null()
		} else {
			r.Bulk(c.Name)
		}
	case eqFold(a.V[1], "id") && len(a.V) == 2:
		r.Int(c.ID)
	case eqFold(a.V[1], "info") && len(a.V) == 2:
		// Redis's fields that kv has, then queue: the NIC queue (its
		// id) whose loop serves the connection. Redis documents the
		// line as open to new fields, and clients skip unknown ones.
		r.BulkString(fmt.Sprintf("id=%d addr=%v laddr=%v name=%s db=0 cmd=client|info resp=2 queue=%d\n",
			c.ID, c.Remote, c.Local, c.Name, c.Queue))
	case eqFold(a.V[1], "setinfo") && len(a.V) == 4:
		r.Status("OK")
	default:
		x.errorf(r, "ERR unknown subcommand or wrong number of arguments for '%s'. Try CLIENT HELP.", sanitize(a.V[1], 128))
	}
}
