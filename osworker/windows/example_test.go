package windows_test

import (
	"fmt"

	"github.com/loadpool/loadpool/osworker/windows"
)

func ExampleParseRegQuery() {
	// reg.exe 3.0 (XP/2003): a header line and TABs between the fields.
	out := "\r\n! REG.EXE VERSION 3.0\r\n\r\nHKEY_LOCAL_MACHINE\\SYSTEM\\Setup\r\n    SystemSetupInProgress\tREG_DWORD\t0x0\r\n\r\n"
	v, ok := windows.FindValue(windows.ParseRegQuery([]byte(out)), "SystemSetupInProgress")
	n, err := v.DWORD()
	fmt.Println(ok, v.Key, v.Type, n, err)
	// Output: true HKEY_LOCAL_MACHINE\SYSTEM\Setup REG_DWORD 0 <nil>
}

func ExampleDescription() {
	fmt.Println(windows.Description(`Win 7 "lab" & del %WINDIR%`))
	// Output: Win 7 _lab_ _ del _WINDIR_
}
