package tcp

import (
	"testing"
	"time"
)

func TestSYNCookies(t *testing.T) {
	c := NewSYNCookiesKey([16]byte{7})
	tup := Tuple{LocalAddr: [4]byte{203, 0, 113, 1}, LocalPort: 443, RemoteAddr: [4]byte{203, 0, 113, 9}, RemotePort: 51000}
	const isn = Seq(0xfffffff0)
	now := 1000 * time.Hour
	tests := []struct {
		mss, want uint16
	}{{0, 536}, {100, 536}, {536, 536}, {1199, 536}, {1200, 1200}, {1460, 1460}, {1459, 1440}, {9000, 8960}, {65535, 8960}}
	for _, tc := range tests {
		ck := c.Generate(tup, isn, tc.mss, now)
		got, ok := c.Validate(ck, tup, isn, now+time.Second)
		if !ok || got != tc.want {
			t.Errorf("mss %d: Validate = %d, %v; want %d", tc.mss, got, ok, tc.want)
		}
	}

	ck := c.Generate(tup, isn, 1460, now)
	wrong := []struct {
		name string
		tup  Tuple
		isn  Seq
		ck   Seq
		at   time.Duration
		ok   bool
	}{
		{"same period", tup, isn, ck, now, true},
		{"next period", tup, isn, ck, now + CookiePeriod, true},
		{"two periods later", tup, isn, ck, now + 2*CookiePeriod, false},
		{"32 periods later (counter wraps)", tup, isn, ck, now + 32*CookiePeriod, false},
		{"from the future", tup, isn, ck, now - CookiePeriod, false},
		{"other remote port", Tuple{tup.LocalAddr, tup.LocalPort, tup.RemoteAddr, tup.RemotePort + 1}, isn, ck, now, false},
		{"other remote addr", Tuple{tup.LocalAddr, tup.LocalPort, [4]byte{203, 0, 113, 10}, tup.RemotePort}, isn, ck, now, false},
		{"other client isn", tup, isn + 1, ck, now, false},
		{"mss index forged", tup, isn, ck ^ 1<<24, now, false},
		{"counter forged", tup, isn, ck ^ 1<<27, now, false},
		{"mac bit flipped", tup, isn, ck ^ 1, now, false},
	}
	for _, tc := range wrong {
		if _, ok := c.Validate(tc.ck, tc.tup, tc.isn, tc.at); ok != tc.ok {
			t.Errorf("%s: ok = %v, want %v", tc.name, ok, tc.ok)
		}
	}
	if _, ok := NewSYNCookiesKey([16]byte{8}).Validate(ck, tup, isn, now); ok {
		t.Error("a cookie validated under another key")
	}
	// Early in the clock (counter 0), a cookie claiming an older period
	// must not underflow into acceptance.
	early := c.Generate(tup, isn, 1460, 0)
	if _, ok := c.Validate(early, tup, isn, time.Second); !ok {
		t.Error("cookie at time 0 rejected")
	}
	// Forging by brute force: of 2^16 random cookies essentially none pass.
	pass := 0
	for i := uint32(0); i < 1<<16; i++ {
		if _, ok := c.Validate(Seq(i*0x9e3779b9), tup, isn, now); ok {
			pass++
		}
	}
	if pass > 2 {
		t.Errorf("%d of 65536 arbitrary cookies validated", pass)
	}
	if n := testing.AllocsPerRun(100, func() {
		_, _ = c.Validate(c.Generate(tup, isn, 1460, now), tup, isn, now)
	}); n != 0 {
		t.Fatalf("%v allocs", n)
	}
}
