package cli

import (
	"encoding/binary"
	"strconv"
	"time"
)

// Payload writes request seq into b (len(b) is its size): seq little endian,
// truncated to fit, then a splitmix64 stream seeded with seed and seq. The
// UDP clients (kudp, udp-pingpong) fill their requests with it so a reply
// can be checked byte for byte without keeping a copy. It allocates nothing.
func Payload(b []byte, seed, seq uint64) {
	var s [8]byte
	binary.LittleEndian.PutUint64(s[:], seq)
	n := copy(b, s[:])
	x := seed ^ (seq * 0x9e3779b97f4a7c15)
	for i := n; i < len(b); i += 8 {
		x += 0x9e3779b97f4a7c15
		z := x
		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
		z = (z ^ (z >> 27)) * 0x94d049bb133111eb
		z ^= z >> 31
		var w [8]byte
		binary.LittleEndian.PutUint64(w[:], z)
		copy(b[i:], w[:])
	}
}

// Percentile returns the q-quantile (0..1) of the sorted d, 0 if d is empty.
func Percentile(d []time.Duration, q float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	return d[min(int(q*float64(len(d))), len(d)-1)]
}

// US formats d in microseconds with one decimal, as the summaries print it.
func US(d time.Duration) string { return strconv.FormatFloat(float64(d)/1e3, 'f', 1, 64) }
