package windows

import (
	"strings"
	"testing"
)

// The exact outputs of ../shared/reference/os-readiness.md.
const (
	vistaImageState = "\r\nHKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Setup\\State\r\n    ImageState    REG_SZ    IMAGE_STATE_COMPLETE\r\n\r\n"
	vistaSystem     = "\r\nHKEY_LOCAL_MACHINE\\SYSTEM\\Setup\r\n    SystemSetupInProgress    REG_DWORD    0x0\r\n\r\n"
	xpSystem        = "\r\n! REG.EXE VERSION 3.0\r\n\r\nHKEY_LOCAL_MACHINE\\SYSTEM\\Setup\r\n    SystemSetupInProgress\tREG_DWORD\t0x0\r\n\r\n"
)

func TestParseRegQuery(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, out string
		want      []RegValue
	}{
		{"vista REG_SZ", vistaImageState, []RegValue{{Key: `HKEY_LOCAL_MACHINE\SOFTWARE\Microsoft\Windows\CurrentVersion\Setup\State`, Name: "ImageState", Type: "REG_SZ", Data: "IMAGE_STATE_COMPLETE"}}},
		{"vista DWORD", vistaSystem, []RegValue{{Key: `HKEY_LOCAL_MACHINE\SYSTEM\Setup`, Name: "SystemSetupInProgress", Type: "REG_DWORD", Data: "0x0"}}},
		{"xp header and tabs", xpSystem, []RegValue{{Key: `HKEY_LOCAL_MACHINE\SYSTEM\Setup`, Name: "SystemSetupInProgress", Type: "REG_DWORD", Data: "0x0"}}},
		{"LF only", strings.ReplaceAll(vistaSystem, "\r", ""), []RegValue{{Key: `HKEY_LOCAL_MACHINE\SYSTEM\Setup`, Name: "SystemSetupInProgress", Type: "REG_DWORD", Data: "0x0"}}},
		{"default values", "\r\n! REG.EXE VERSION 3.0\r\n\r\nHKEY_LOCAL_MACHINE\\X\r\n    <NO NAME>\tREG_SZ\tone\r\n\r\nHKEY_LOCAL_MACHINE\\Y\r\n    (Default)    REG_SZ    two  \r\n",
			[]RegValue{{Key: `HKEY_LOCAL_MACHINE\X`, Type: "REG_SZ", Data: "one"}, {Key: `HKEY_LOCAL_MACHINE\Y`, Type: "REG_SZ", Data: "two"}}},
		{"empty data, spaces in data, multi_sz", "\r\nHKEY_LOCAL_MACHINE\\SYSTEM\\Setup\r\n    CmdLine    REG_SZ    \r\n    Comment    REG_SZ    win 7 lab\r\n    M    REG_MULTI_SZ    a\\0b\r\n    OOBEInProgress    REG_DWORD    0x1\r\n\r\nHKEY_LOCAL_MACHINE\\SYSTEM\\Setup\\Status\r\n",
			[]RegValue{{`HKEY_LOCAL_MACHINE\SYSTEM\Setup`, "CmdLine", "REG_SZ", ""}, {`HKEY_LOCAL_MACHINE\SYSTEM\Setup`, "Comment", "REG_SZ", "win 7 lab"},
				{`HKEY_LOCAL_MACHINE\SYSTEM\Setup`, "M", "REG_MULTI_SZ", `a\0b`}, {`HKEY_LOCAL_MACHINE\SYSTEM\Setup`, "OOBEInProgress", "REG_DWORD", "0x1"}}},
		{"error text only", "ERROR: The system was unable to find the specified registry key or value.\r\n", nil},
		{"empty", "", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			got := ParseRegQuery([]byte(c.out))
			if len(got) != len(c.want) {
				t.Fatalf("got %+v, want %+v", got, c.want)
			}
			for i := range got {
				if got[i] != c.want[i] {
					t.Errorf("value %d: got %+v, want %+v", i, got[i], c.want[i])
				}
			}
		})
	}
}

func TestDWORD(t *testing.T) {
	t.Parallel()
	cases := []struct {
		data string
		want uint32
		ok   bool
	}{{"0x0", 0, true}, {"0x1", 1, true}, {"0x2f0", 0x2f0, true}, {"2f0", 0x2f0, true}, {"0X1F", 31, true}, {"", 0, false}, {"yes", 0, false}, {"0x100000000", 0, false}}
	for _, c := range cases {
		got, err := RegValue{Name: "v", Type: "REG_DWORD", Data: c.data}.DWORD()
		if (err == nil) != c.ok || got != c.want {
			t.Errorf("DWORD(%q) = %d, %v; want %d, ok %v", c.data, got, err, c.want, c.ok)
		}
	}
}

func FuzzParseRegQuery(f *testing.F) {
	for _, s := range []string{vistaImageState, vistaSystem, xpSystem, "", "HKEY\r\n REG_SZ\r\n", "    a REG_DWORD zz"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, out string) {
		for _, v := range ParseRegQuery([]byte(out)) {
			if !strings.HasPrefix(v.Type, "REG_") || strings.ContainsAny(v.Name+v.Data, "\r\n") {
				t.Fatalf("bad value %+v from %q", v, out)
			}
			_, _ = v.DWORD()
		}
	})
}

func TestDescription(t *testing.T) {
	t.Parallel()
	cases := []struct{ in, want string }{
		{"win7-sp1-v3", "win7-sp1-v3"},
		{"Windows 7 (lab) v2.1", "Windows 7 (lab) v2.1"},
		{`win7 "lab" & del %WINDIR%`, `win7 _lab_ _ del _WINDIR_`},
		{"a|b<c>d^e!f$g`h\\i\tj", "a_b_c_d_e_f_g_h_i_j"},
		{"Bürorechner 7", "Bürorechner 7"},
		{strings.Repeat("x", 60), strings.Repeat("x", MaxDescription)},
		{"  padded  ", "padded"},
	}
	for _, c := range cases {
		if got := Description(c.in); got != c.want {
			t.Errorf("Description(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
