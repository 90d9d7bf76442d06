package messages

import (
	"regexp"
	"strings"
	"testing"
)

// The hand-written checks accept exactly what the regexps they replaced
// accepted.
func TestPlainMatchesTheRegexps(t *testing.T) {
	was := map[string]*regexp.Regexp{
		"token": regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_-]{0,63}$`),
		"id":    regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_-]{0,127}$`),
		"name":  regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,252}$`),
		"key":   regexp.MustCompile(`^[A-Za-z0-9_=-]+$`),
	}
	now := map[string]func(string) bool{
		"token": isToken, "id": isID, "name": isName,
		"key": plainKey,
	}
	inputs := []string{"", "a", "-a", "_a", ".a", "a.b", "a-b", "a_b", "a=b", "=a", "a b", "a\n", "\na", "é", "aé", "a/b", "a*", "a>",
		"A9_-", "a..b", "a.", strings.Repeat("a", 63), strings.Repeat("a", 64), strings.Repeat("a", 65),
		strings.Repeat("b", 127), strings.Repeat("b", 128), strings.Repeat("b", 129),
		strings.Repeat("c", 252), strings.Repeat("c", 253), strings.Repeat("c", 254), "a\x00", "\xff"}
	for kind, re := range was {
		for _, in := range inputs {
			v := in
			if kind == "key" {
				v = strings.ReplaceAll(in, ".", "_") // DurationsKey matched the image with dots made '_'
			}
			if want, got := re.MatchString(v), now[kind](in); got != want {
				t.Errorf("%s %q: %v, the regexp said %v", kind, in, got, want)
			}
		}
	}
}
