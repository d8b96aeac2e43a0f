package main

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// The driver table of docs/nics.md and drivers.go say the same.
func TestDriverTableMatchesDocs(t *testing.T) {
	doc, err := os.ReadFile("../../docs/nics.md")
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile("(?m)^\\| (`[^|]+) \\| [^|]+ \\| ([^|]+) \\| ([^|]+) \\|")
	seen := map[string]bool{}
	for _, m := range row.FindAllStringSubmatch(string(doc), -1) {
		native, zc := strings.TrimSpace(m[2]), strings.TrimSpace(m[3])
		for _, name := range regexp.MustCompile("`([^`]+)`").FindAllStringSubmatch(m[1], -1) {
			d, ok := drivers[name[1]]
			if !ok {
				t.Errorf("docs/nics.md lists %s, drivers.go does not", name[1])
				continue
			}
			seen[name[1]] = true
			if d.native == "" {
				d.native = "none"
			}
			if d.zeroCopy == "" {
				d.zeroCopy = "none"
			}
			if d.native != native || d.zeroCopy != zc {
				t.Errorf("%s: docs say native %s, zero-copy %s; drivers.go %s, %s", name[1], native, zc, d.native, d.zeroCopy)
			}
		}
	}
	for name := range drivers {
		if !seen[name] {
			t.Errorf("drivers.go has %s, docs/nics.md does not", name)
		}
	}
}
