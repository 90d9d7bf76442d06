package xcatemu

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// Behavior tells a node how to misbehave during its installs.
type Behavior struct {
	// StallAt: the node's status stops changing once it reaches this
	// status (e.g. "installing", or "powering-on" for a node whose status
	// updates never arrive).
	StallAt string
	// Fail: every install ends in failed instead of booted.
	Fail bool
	// Flap: once installing, the status changes forever (installing,
	// booting, postbooting, installing, ...) every FlapEvery (default
	// Timing.Installing), and never reaches booted.
	Flap      bool
	FlapEvery time.Duration
	// DropTokensAt: every token is dropped when the node reaches this
	// status (a token lost mid-install).
	DropTokensAt string
	// DiskFirst: the node's firmware boots from its disk first, so a power
	// on, boot or reset starts an install only when nextboot net was set
	// since the last bootstate change; otherwise it boots the OS on its
	// disk (status powering-on -> booted, bootstate unchanged) or, with an
	// empty disk, does nothing.
	DiskFirst bool
}

// node is one nodelist row with what the other tables say about it.
type node struct {
	name      string
	attrs     map[string]string
	bootstate string
	power     string
	nextboot  string
	netOnce   bool     // a one-time network boot is pending (nextboot net since the last bootstate)
	disk      string   // the osimage whose OS is on the disk ("" empty)
	from      string   // what the last power on booted from: "network" or "disk"
	history   []string // the PUT commands served, oldest first (at most maxHistory)
	behavior  Behavior
	failOnce  bool
	seq       chan struct{} // closed to stop the running status sequence
	counted   bool          // this node's install is counted as running
}

// NodeState is what a test can read about a node.
type NodeState struct {
	Status, StatusTime, Bootstate, Power, Provmethod, NextBoot string
	// BootedFrom is what the last power on, boot or reset booted from:
	// "network" or "disk" ("" before any).
	BootedFrom string
	// History is the PUT commands the node served, oldest first, as
	// "<resource> <key>=<value>" ("bootstate osimage=img", "nextboot
	// order=net", "power action=boot"); at most the last 64.
	History []string
}

const maxHistory = 64

// AddNode defines a node (or replaces its attributes). attrs are lsdef
// attributes ("mac", "groups", "mgt", "status", ...); a node starts
// powered off with bootstate offline.
func (s *Server) AddNode(name string, attrs map[string]string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, ok := s.nodes[name]
	if !ok {
		n = &node{name: name, bootstate: "offline", power: "off", attrs: map[string]string{}}
		s.nodes[name] = n
	}
	maps.Copy(n.attrs, attrs)
	if b := attrs["bootstate"]; b != "" {
		n.bootstate = b
		delete(n.attrs, "bootstate")
	}
	if p := attrs["power"]; p != "" {
		n.power = p
		delete(n.attrs, "power")
	}
	if pm := attrs["provmethod"]; pm != "" {
		n.disk = pm // a node defined as running an image has it on disk
	}
}

// AddOSImage defines an osimage: "provmethod" (install, netboot,
// statelite), "profile", "osvers", "osarch", ...
func (s *Server) AddOSImage(name string, attrs map[string]string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.images[name] = maps.Clone(attrs)
}

// SetBehavior sets how node behaves from its next status change on.
func (s *Server) SetBehavior(name string, b Behavior) error {
	return s.withNode(name, func(n *node) { n.behavior = b })
}

// FailNextInstall makes node's next install (only) end in failed.
func (s *Server) FailNextInstall(name string) error {
	return s.withNode(name, func(n *node) { n.failOnce = true })
}

// Node returns what xCAT would say about a node.
func (s *Server) Node(name string) (NodeState, error) {
	var st NodeState
	err := s.withNode(name, func(n *node) {
		st = NodeState{Status: n.attrs["status"], StatusTime: n.attrs["statustime"], Bootstate: n.bootstate,
			Power: n.power, Provmethod: n.attrs["provmethod"], NextBoot: n.nextboot,
			BootedFrom: n.from, History: slices.Clone(n.history)}
	})
	return st, err
}

func (s *Server) withNode(name string, f func(*node)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, ok := s.nodes[name]
	if !ok {
		return fmt.Errorf("xcatemu: no node %q", name)
	}
	f(n)
	return nil
}

func (s *Server) nodeNames() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.nodeNamesLocked()
}

func (s *Server) nodeNamesLocked() []string { return sortedKeys(s.nodes) }

func (s *Server) imageNames() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.imageNamesLocked()
}

func (s *Server) imageNamesLocked() []string { return sortedKeys(s.images) }

// setStatus writes status and statustime as updatenodestat does; the
// caller holds s.mu.
func (s *Server) setStatus(n *node, status string) {
	n.attrs["status"] = status
	n.attrs["statustime"] = s.statusTime(time.Now())
	if n.behavior.DropTokensAt != "" && status == n.behavior.DropTokensAt {
		clear(s.tokens)
	}
}

// nodestat answers without nmap: from power, status and bootstate.
func (n *node) nodestat() string {
	if n.power != "on" {
		return "noping"
	}
	switch n.attrs["status"] {
	case "installing":
		return "installing prep"
	case "postbooting", "booted", "alive", "failed":
		return "sshd"
	}
	return n.bootstate
}

// putBootstate is nodeset: action first, then the (one) other key. It
// cancels a pending one-time network boot (see Behavior.DiskFirst).
func (s *Server) putBootstate(n *node, body map[string]any) error {
	if n.netOnce {
		n.netOnce, n.nextboot = false, "boot override inactive"
	}
	if v, ok := body["action"].(string); ok && v != "" {
		return s.nodeset(n, v)
	}
	for k, v := range body {
		v, _ := v.(string)
		switch k {
		case "osimage":
			return s.nodeset(n, "osimage="+v)
		case "state":
			return s.nodeset(n, v)
		}
	}
	return fmt.Errorf("%s: Error: Missed Action.", n.name)
}

// nodeset changes the boot state; the caller holds s.mu.
func (s *Server) nodeset(n *node, arg string) error {
	if img, ok := strings.CutPrefix(arg, "osimage="); ok {
		return s.nodesetImage(n, img)
	}
	switch {
	case arg == "install" || arg == "netboot":
		return fmt.Errorf("%s: Error: The '%s' state is deprecated: use nodeset <noderange> osimage=<imagename>", n.name, arg)
	case arg == "boot" || arg == "offline" || arg == "shell" || arg == "standby" || strings.HasPrefix(arg, "runcmd="):
		n.bootstate = arg
		return nil
	}
	return fmt.Errorf("%s: Error: Unsupported nodeset state %q", n.name, arg)
}

func (s *Server) nodesetImage(n *node, img string) error {
	im, ok := s.images[img]
	if !ok {
		return fmt.Errorf("Cannot find the OS image %s in the osimage table.", img)
	}
	if im["provmethod"] == "" {
		return fmt.Errorf("osimage.provmethod for %s must be set.", img)
	}
	if n.attrs["mac"] == "" {
		return fmt.Errorf("%s: No MAC address available for this node", n.name)
	}
	n.attrs["provmethod"] = img
	n.attrs["profile"] = im["profile"]
	n.attrs["os"] = im["osvers"]
	n.attrs["arch"] = im["osarch"]
	n.bootstate = fmt.Sprintf("%s %s-%s-%s", im["provmethod"], im["osvers"], im["osarch"], im["profile"])
	return nil
}

// putPower is rpower with the IPMI plugin's semantics.
func (s *Server) putPower(n *node, body map[string]any) error {
	action, _ := body["action"].(string)
	switch action {
	case "on":
		if n.power != "on" {
			n.power = "on"
			s.startSequence(n)
		}
		s.setStatus(n, "powering-on")
	case "boot", "cycle":
		n.power = "on"
		s.setStatus(n, "powering-on")
		s.startSequence(n)
	case "reset":
		if n.power == "on" {
			s.startSequence(n)
		}
	case "off", "softoff":
		n.power = "off"
		s.stopSequence(n)
		s.setStatus(n, "powering-off")
	case "stat", "state":
	default:
		return fmt.Errorf("%s: Error: Unsupported command: rpower %s", n.name, action)
	}
	return nil
}

// putNextboot is rsetboot: a one-time boot device, used by the next power
// on, boot or reset.
func putNextboot(n *node, body map[string]any) error {
	order, _ := body["order"].(string)
	names := map[string]string{"net": "Network", "hd": "Hard Drive", "cd": "CD/DVD", "def": "boot override inactive", "setup": "BIOS Setup"}
	v, ok := names[order]
	if !ok {
		return fmt.Errorf("%s: Error: Unsupported boot device %q", n.name, order)
	}
	n.nextboot, n.netOnce = v, order == "net"
	return nil
}

// bmc reports whether rinstall runs rsetboot net for the node.
func (n *node) bmc() bool { return n.attrs["mgt"] == "ipmi" || n.attrs["mgt"] == "openbmc" }

// record appends a served PUT to the node's history; the caller holds s.mu.
func (n *node) record(res string, body map[string]any) {
	var kv []string
	for _, k := range sortedKeys(body) {
		kv = append(kv, k+"="+attrString(body[k]))
	}
	n.history = append(n.history, res+" "+strings.Join(kv, ","))
	if len(n.history) > maxHistory {
		n.history = slices.Delete(n.history, 0, len(n.history)-maxHistory)
	}
}

// putProvision is rinstall: nodeset, rsetboot net for ipmi and openbmc
// nodes, then power boot.
func (s *Server) putProvision(n *node, body map[string]any) error {
	arg, _ := body["action"].(string)
	if arg == "" {
		img, _ := body["osimage"].(string)
		arg = "osimage=" + img
	}
	if err := s.nodeset(n, arg); err != nil {
		return err
	}
	if n.bmc() {
		n.nextboot, n.netOnce = "Network", true
	}
	return s.putPower(n, map[string]any{"action": "boot"})
}

// SetTiming changes how long the phases of installs and boots take, from
// each node's next phase on.
func (s *Server) SetTiming(t Timing) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cfg.Timing = t
}
