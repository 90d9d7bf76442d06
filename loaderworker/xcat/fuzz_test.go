package xcat

import (
	"strings"
	"testing"
)

// FuzzDecodeReply feeds arbitrary bodies and statuses to the reply decoder:
// it never panics, a 2xx never comes back as an error of a non-transient
// kind, and an error always names the node and never claims success.
func FuzzDecodeReply(f *testing.F) {
	for _, s := range []string{``, `{}`, `[]`, `null`, `{"error":"Authentication failure","errorcode":"2"}`,
		`{"error":["cn01: Error: x"],"errorcode":"1"}`, `{"error":{"a":1},"errorcode":[1]}`, `<html>504</html>`,
		`{"cn01":{"power":"on"}}`, `{"cn01":{"on":""}}`, `{"cn01":"x"}`} {
		f.Add(200, s)
		f.Add(403, s)
	}
	f.Fuzz(func(t *testing.T, status int, body string) {
		var out map[string]map[string]string
		err := decodeReply("power stat", "cn01", status, []byte(body), nil, &out)
		if err == nil {
			if status < 200 || status >= 300 {
				t.Fatalf("HTTP %d decoded as success", status)
			}
			return
		}
		if !strings.Contains(err.Error(), "node cn01") {
			t.Fatalf("error %q does not name the node", err)
		}
		if status >= 200 && status < 300 && !retryable(err) {
			t.Fatalf("an undecodable 2xx is not transient: %v", err)
		}
		_ = decide(err)
	})
}

// FuzzRenewTime: any expiry string gives zero or a time before it expires.
func FuzzRenewTime(f *testing.F) {
	for _, s := range []string{"never", "", "2026-8-23 9:5:7", "2026-13-40 99:99:99", "0-0-0 0:0:0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, expire string) {
		now := testNow
		got := renewTime(expire, now)
		if !got.IsZero() && !got.After(now) {
			t.Fatalf("renewTime(%q) = %v, not after now %v", expire, got, now)
		}
	})
}
