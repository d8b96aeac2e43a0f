package libos_test

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"
)

// Every section of docs/troubleshooting.md that an error message or a
// command points to exists (an <a id=...> anchor), and every anchor is
// pointed to by some message.
func TestTroubleshootingAnchors(t *testing.T) {
	doc, err := os.ReadFile("../docs/troubleshooting.md")
	if err != nil {
		t.Fatal(err)
	}
	anchors := map[string]bool{}
	for _, m := range regexp.MustCompile(`<a id="([a-z0-9-]+)"></a>`).FindAllStringSubmatch(string(doc), -1) {
		anchors[m[1]] = true
	}
	ref := regexp.MustCompile(`(?:troubleshooting\.md|%s)#([a-z][a-z0-9-]*)`)
	used := map[string]bool{}
	for _, glob := range []string{"*.go", "../cmd/demixdp/*.go", "../internal/cli/*.go"} {
		files, _ := filepath.Glob(glob)
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range ref.FindAllStringSubmatch(string(b), -1) {
				used[m[1]] = true
				if !anchors[m[1]] {
					t.Errorf("%s points to docs/troubleshooting.md#%s, which has no such anchor", f, m[1])
				}
			}
		}
	}
	for a := range anchors {
		if !used[a] {
			t.Errorf("docs/troubleshooting.md#%s: no message points to it", a)
		}
	}
	if len(used) < 8 {
		t.Errorf("only %d sections referenced: %v", len(used), used)
	}
}
