// Package headless drives Debian's chromium for tests: started headless
// with its DevTools protocol on a pipe (--remote-debugging-pipe: file
// descriptors 3 and 4, NUL-separated JSON), so no websocket client and
// no port are needed. Start fails the test when chromium is missing and
// CI=true (CI must run the browser tests; .ci/deps installs it), and skips
// it otherwise. Browser.Close (registered as cleanup) kills chromium.
package headless
