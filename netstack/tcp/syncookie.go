package tcp

import (
	"crypto/rand"
	"encoding/binary"
	"time"
)

// CookiePeriod is the tick of the SYN-cookie time counter.
const CookiePeriod = 64 * time.Second

// cookieMaxAge is how many counter periods a cookie stays valid: the
// current one and the one before, so between 64 and 128 seconds.
const cookieMaxAge = 2

// CookieMSS is the table of MSS values a SYN cookie can carry; the cookie
// stores the index of the largest entry not above the client's MSS (the
// smallest entry when the client's MSS is below all of them, as Linux does).
var CookieMSS = [8]uint16{536, 1200, 1300, 1380, 1440, 1460, 4036, 8960}

// SYNCookies makes and checks SYN cookies (RFC 4987 §3.6): a listener under
// SYN flood answers with a SYN-ACK whose ISN encodes the connection, and
// keeps no state until the ACK returns it.
//
// Layout of the 32-bit cookie: bits 31-27 hold the low 5 bits of a counter
// that ticks every CookiePeriod, bits 26-24 the CookieMSS index, and bits
// 23-0 the low 24 bits of SipHash-2-4 over the tuple, the full counter, the
// client's ISN and the MSS index. A forged cookie therefore passes with
// probability 2^-24 per try.
//
// Only the MSS survives: window scaling, SACK-permitted and timestamps that
// the client offered on its SYN are lost, and a connection completed from a
// cookie must run without them (Linux can keep them in the timestamp; this
// implementation chooses not to).
type SYNCookies struct {
	k0, k1 uint64
}

// NewSYNCookies returns a cookie maker keyed with 16 bytes from crypto/rand.
func NewSYNCookies() *SYNCookies {
	var key [16]byte
	_, _ = rand.Read(key[:]) // never fails (crypto/rand crashes instead).
	return NewSYNCookiesKey(key)
}

// NewSYNCookiesKey returns a cookie maker with a caller-chosen key.
func NewSYNCookiesKey(key [16]byte) *SYNCookies {
	return &SYNCookies{k0: binary.LittleEndian.Uint64(key[0:]), k1: binary.LittleEndian.Uint64(key[8:])}
}

func (c *SYNCookies) mac(t *Tuple, count uint32, clientISN Seq, mssIdx uint32) uint32 {
	var b [21]byte
	t.put(b[:])
	binary.BigEndian.PutUint32(b[12:], count)
	binary.BigEndian.PutUint32(b[16:], uint32(clientISN))
	b[20] = byte(mssIdx)
	return uint32(sipHash24(c.k0, c.k1, b[:])) & 0xffffff
}

// Generate returns the ISN to send in the SYN-ACK answering a SYN with
// sequence number clientISN and MSS option mss (0 if absent; RFC 9293's
// default 536 is then used) on t at time now.
func (c *SYNCookies) Generate(t Tuple, clientISN Seq, mss uint16, now time.Duration) Seq {
	if mss == 0 {
		mss = 536
	}
	idx := uint32(0)
	for i := len(CookieMSS) - 1; i > 0; i-- {
		if mss >= CookieMSS[i] {
			idx = uint32(i)
			break
		}
	}
	count := uint32(now / CookiePeriod)
	return Seq((count&31)<<27 | idx<<24 | c.mac(&t, count, clientISN, idx))
}

// Validate checks cookie, the acknowledgment number of the returning ACK
// minus one, against t and clientISN (the ACK's sequence number minus one)
// at time now. It returns the MSS to use and true, or 0 and false for a
// forged or wrong-tuple cookie, or one made CookiePeriod*2 or more ago (or
// in the future). Allocates nothing.
func (c *SYNCookies) Validate(cookie Seq, t Tuple, clientISN Seq, now time.Duration) (uint16, bool) {
	v := uint32(cookie)
	nowCount := uint32(now / CookiePeriod)
	age := (nowCount - v>>27) & 31 // periods since the cookie's counter
	if age >= cookieMaxAge || age > nowCount {
		return 0, false
	}
	idx := v >> 24 & 7
	if c.mac(&t, nowCount-age, clientISN, idx) != v&0xffffff {
		return 0, false
	}
	return CookieMSS[idx], true
}
