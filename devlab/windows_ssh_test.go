package devlab_test

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/loadpool/loadpool/internal/poll"

	"github.com/loadpool/loadpool/devlab"
	"github.com/loadpool/loadpool/devlab/labtest"
	"golang.org/x/crypto/ssh"
)

// Through SSH: Windows OpenSSH's banner, exact stdout, stderr and exit
// statuses of reg.exe.
func TestWindowsOverSSH(t *testing.T) {
	t.Parallel()
	s := labtest.Signer(t)
	c, err := devlab.NewWindowsComputer(devlab.Config{Name: "win-ssh", Authorized: s.PublicKey()}, &devlab.Windows{Version: "7"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	if err := c.Boot("win7"); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, "SSH up", c.Answering)
	cl, err := ssh.Dial("tcp", c.Addr(), &ssh.ClientConfig{User: "Administrator", Auth: []ssh.AuthMethod{ssh.PublicKeys(s)},
		HostKeyCallback: ssh.FixedHostKey(c.HostKey()), Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if v := string(cl.ServerVersion()); v != devlab.WindowsBanner {
		t.Errorf("banner %q, want %q", v, devlab.WindowsBanner)
	}
	cases := []struct {
		cmd, stdout, stderr string
		exit                int
	}{
		{`reg query "HKLM\SOFTWARE\Microsoft\Windows\CurrentVersion\Setup\State" /v ImageState`,
			"\r\nHKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Setup\\State\r\n    ImageState    REG_SZ    IMAGE_STATE_COMPLETE\r\n\r\n", "", 0},
		{`reg query HKLM\SYSTEM\Setup /v NoSuchValue`, "", "ERROR: The system was unable to find the specified registry key or value.\r\n", 1},
		{`sc query nosuch`, "[SC] EnumQueryServicesStatus:OpenService FAILED 1060:\r\n\r\nThe specified service does not exist as an installed service.\r\n\r\n", "", 1060},
	}
	for _, tc := range cases {
		sess, err := cl.NewSession()
		if err != nil {
			t.Fatal(err)
		}
		var out, errb bytes.Buffer
		sess.Stdout, sess.Stderr = &out, &errb
		err = sess.Run(tc.cmd)
		sess.Close()
		exit := 0
		var ee *ssh.ExitError
		if errors.As(err, &ee) {
			exit = ee.ExitStatus()
		} else if err != nil {
			t.Fatalf("%s: %v", tc.cmd, err)
		}
		if out.String() != tc.stdout || errb.String() != tc.stderr || exit != tc.exit {
			t.Errorf("%s: got %q %q exit %d, want %q %q exit %d", tc.cmd, out.String(), errb.String(), exit, tc.stdout, tc.stderr, tc.exit)
		}
	}
}
