// Package names turns Go field names into the snake-case names the
// commands print counters under and the metrics are named after.
package names

import (
	"strings"
	"unicode"
)

// Snake turns a Go field name into snake case: RxDescs → rx_descs,
// ICMPEchoReplies → icmp_echo_replies, UDP → udp, RSTsOut → rsts_out.
func Snake(s string) string {
	r := []rune(s)
	var b strings.Builder
	for i, c := range r {
		if unicode.IsUpper(c) && i > 0 {
			prevLower := unicode.IsLower(r[i-1]) || unicode.IsDigit(r[i-1])
			nextLower := i+1 < len(r) && unicode.IsLower(r[i+1])
			// An acronym's plural ("RTOs", "RSTsOut", "ChallengeACKs")
			// keeps its s: the lower-case letter ends the acronym.
			plural := nextLower && r[i+1] == 's' && (i+2 == len(r) || unicode.IsUpper(r[i+2]))
			if prevLower || (unicode.IsUpper(r[i-1]) && nextLower && !plural) {
				b.WriteByte('_')
			}
		}
		b.WriteRune(unicode.ToLower(c))
	}
	return b.String()
}
