package windows_test

import (
	"fmt"

	"github.com/loadpool/loadpool/messages"
	"github.com/loadpool/loadpool/osworker/windows"
)

func ExampleProfile() {
	p := windows.Profile("7", messages.TypeBlade, true)
	fmt.Println(p.Name, p.InitialDelay, p.AnswerTimeout, p.Poll, p.OnTimeout, p.ResetAnswerTimeout)
	fmt.Println(p.ForAttempt(2).AnswerTimeout)
	// Output:
	// windows/7/sysprep 1m0s 30m0s 5s power-reset 10m0s
	// 45m0s
}
