package devlab

import (
	"errors"
	"strings"
)

// splitWords splits a simple POSIX shell command line into words: single
// and double quotes (no expansion inside), backslash escapes, one "> file"
// redirection (returned apart); "2>/dev/null" and "2>&1" are dropped.
func splitWords(cmd string) (words []string, redir string, err error) {
	var cur strings.Builder
	inWord, next := false, false
	flush := func() {
		if !inWord {
			return
		}
		w := cur.String()
		cur.Reset()
		inWord = false
		switch {
		case next:
			redir, next = w, false
		case w == "2>/dev/null" || w == "2>&1":
		default:
			words = append(words, w)
		}
	}
	for i := 0; i < len(cmd); i++ {
		ch := cmd[i]
		switch {
		case ch == '\'':
			j := strings.IndexByte(cmd[i+1:], '\'')
			if j < 0 {
				return nil, "", errors.New("unterminated quoted string")
			}
			cur.WriteString(cmd[i+1 : i+1+j])
			inWord, i = true, i+1+j
		case ch == '"':
			j := strings.IndexByte(cmd[i+1:], '"')
			if j < 0 {
				return nil, "", errors.New("unterminated quoted string")
			}
			cur.WriteString(cmd[i+1 : i+1+j])
			inWord, i = true, i+1+j
		case ch == '\\' && i+1 < len(cmd):
			cur.WriteByte(cmd[i+1])
			inWord, i = true, i+1
		case ch == ' ' || ch == '\t':
			flush()
		case ch == '>' && !inWord:
			next = true
		case ch == ';' || ch == '|' || ch == '&' && !strings.HasPrefix(cur.String(), "2>"):
			return nil, "", errors.New("devlab's shell runs one simple command (no ; | &&)")
		default:
			cur.WriteByte(ch)
			inWord = true
		}
	}
	flush()
	if next {
		return nil, "", errors.New("redirection without a file")
	}
	return words, redir, nil
}
