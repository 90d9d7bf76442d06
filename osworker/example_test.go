package osworker_test

import (
	"fmt"

	"github.com/loadpool/loadpool/messages"
	"github.com/loadpool/loadpool/osworker"
)

func ExampleDefaultProfile() {
	p := osworker.DefaultProfile("windows", "7", messages.TypeBlade, true)
	fmt.Println(p.Name, p.InitialDelay, p.AnswerTimeout, p.Poll, p.OnTimeout, p.ResetAnswerTimeout)
	fmt.Println(p.ForAttempt(2).AnswerTimeout)
	// Output:
	// windows/7/sysprep 1m0s 30m0s 5s power-reset 10m0s
	// 45m0s
}

func ExampleParseOverrides() {
	ov, err := osworker.ParseOverrides([]byte(`[
  {"family": "windows", "version": "7", "sysprep": true, "set": {"answer_timeout": "45m"}},
  {"family": "windows", "set": {"pol": "3s"}}
]`))
	fmt.Println(ov.Len(), err)
	// Output:
	// 0 profiles file: entry 1 (line 3): set: not a wait profile: unknown field "pol"
}
