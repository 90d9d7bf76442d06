package devlab

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
)

// Agent is a QEMU guest agent socket in front of a simulated computer, so
// that an OS module can be run over the guest agent control
// (osworker/control/qga, enrolment attribute qga_socket) against the same
// simulated boots as over SSH. It speaks the agent's line-delimited JSON
// (guest-ping, guest-exec with capture-output, guest-exec-status) and
// runs each command on the computer through its SSH personality, so the
// computer's boot timing, flakiness, NeverAnswer and power resets are
// what the agent shows: while SSH does not answer, the agent closes the
// connection without a reply (an agent that is not up yet). It does not
// model the agent's other commands, guest-sync or file transfer.
type Agent struct {
	c      *Computer
	client ssh.Signer
	ln     net.Listener
	mu     sync.Mutex
	next   int
	procs  map[int]*agentProc
	wg     sync.WaitGroup
}

type agentProc struct {
	done     bool
	exit     int
	out, err []byte
}

// ServeAgent listens on the unix socket path; client is a key the
// computer authorizes. Close stops it.
func (c *Computer) ServeAgent(path string, client ssh.Signer) (*Agent, error) {
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, err
	}
	a := &Agent{c: c, client: client, ln: ln, next: 1000, procs: map[int]*agentProc{}}
	a.wg.Add(1)
	go a.serve()
	return a, nil
}

// Close stops the agent and waits for its connections to end.
func (a *Agent) Close() {
	a.ln.Close()
	a.wg.Wait()
}

func (a *Agent) serve() {
	defer a.wg.Done()
	for {
		nc, err := a.ln.Accept()
		if err != nil {
			return
		}
		a.wg.Add(1)
		go a.handle(nc)
	}
}

type agentRequest struct {
	Execute   string `json:"execute"`
	Arguments struct {
		Path string   `json:"path"`
		Arg  []string `json:"arg"`
		PID  int      `json:"pid"`
	} `json:"arguments"`
}

func (a *Agent) handle(nc net.Conn) {
	defer a.wg.Done()
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(30 * time.Second))
	line, err := bufio.NewReader(nc).ReadBytes('\n')
	if err != nil {
		return
	}
	var req agentRequest
	if json.Unmarshal(line, &req) != nil {
		a.reply(nc, nil, "GenericError", "malformed request")
		return
	}
	switch req.Execute {
	case "guest-ping":
		cl, err := a.dial()
		if err != nil {
			return // not up yet: no answer
		}
		cl.Close()
		a.reply(nc, struct{}{}, "", "")
	case "guest-exec":
		if req.Arguments.Path != "/bin/sh" || len(req.Arguments.Arg) != 2 || req.Arguments.Arg[0] != "-c" {
			a.reply(nc, nil, "GenericError", "this simulated agent runs only /bin/sh -c CMD")
			return
		}
		cl, err := a.dial()
		if err != nil {
			return
		}
		a.reply(nc, map[string]int{"pid": a.start(cl, req.Arguments.Arg[1])}, "", "")
	case "guest-exec-status":
		a.status(nc, req.Arguments.PID)
	default:
		a.reply(nc, nil, "CommandNotFound", "The command "+req.Execute+" has not been found")
	}
}

// start runs cmd on the computer in the background; its output is kept
// under the returned pid.
func (a *Agent) start(cl *ssh.Client, cmd string) int {
	a.mu.Lock()
	a.next++
	pid, p := a.next, &agentProc{}
	a.procs[pid] = p
	a.mu.Unlock()
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		defer cl.Close()
		exit, out, errOut := -1, []byte(nil), []byte(nil)
		if s, err := cl.NewSession(); err == nil {
			var o, e bytes.Buffer
			s.Stdout, s.Stderr = &o, &e
			err = s.Run(cmd)
			var ee *ssh.ExitError
			switch {
			case err == nil:
				exit = 0
			case errors.As(err, &ee):
				exit = ee.ExitStatus()
			}
			out, errOut = o.Bytes(), e.Bytes()
		}
		a.mu.Lock()
		p.done, p.exit, p.out, p.err = true, exit, out, errOut
		a.mu.Unlock()
	}()
	return pid
}

func (a *Agent) status(nc net.Conn, pid int) {
	a.mu.Lock()
	p, ok := a.procs[pid]
	var st map[string]any
	if ok {
		st = map[string]any{"exited": p.done}
		if p.done {
			st["exitcode"] = p.exit
			st["out-data"] = base64.StdEncoding.EncodeToString(p.out)
			st["err-data"] = base64.StdEncoding.EncodeToString(p.err)
			delete(a.procs, pid)
		}
	}
	a.mu.Unlock()
	if !ok {
		a.reply(nc, nil, "GenericError", "Invalid parameter 'pid'")
		return
	}
	a.reply(nc, st, "", "")
}

// dial reaches the computer's SSH personality (its current host key).
func (a *Agent) dial() (*ssh.Client, error) {
	return ssh.Dial("tcp", a.c.Addr(), &ssh.ClientConfig{User: "root", Auth: []ssh.AuthMethod{ssh.PublicKeys(a.client)},
		HostKeyCallback: ssh.FixedHostKey(a.c.HostKey()), Timeout: 2 * time.Second})
}

func (a *Agent) reply(nc net.Conn, ret any, class, desc string) {
	var body any = map[string]any{"return": ret}
	if class != "" {
		body = map[string]any{"error": map[string]string{"class": class, "desc": desc}}
	}
	b, _ := json.Marshal(body)
	_, _ = nc.Write(append(b, '\n'))
}
