package osworker_test

import (
	"fmt"

	"github.com/loadpool/loadpool/osworker"
)

func ExampleParseOverrides() {
	ov, err := osworker.ParseOverrides([]byte(`[
  {"family": "windows", "version": "7", "sysprep": true, "set": {"answer_timeout": "45m"}},
  {"family": "windows", "set": {"pol": "3s"}}
]`))
	fmt.Println(ov.Len(), err)
	// Output:
	// 0 profiles file: entry 1 (line 3): set: not a wait profile: unknown field "pol"
}
