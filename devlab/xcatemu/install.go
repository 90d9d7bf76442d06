package xcatemu

import (
	"strings"
	"time"
)

// Statuses a node's sequence writes (GDEF %VALID_STATUS_VALUES).
const (
	StatusPoweringOn  = "powering-on"
	StatusPoweringOff = "powering-off"
	StatusInstalling  = "installing"
	StatusBooting     = "booting"
	StatusPostbooting = "postbooting"
	StatusBooted      = "booted"
	StatusFailed      = "failed"
)

// startSequence (re)starts what a node does after power on, boot or reset.
// A node booting from the network (the firmware's first device, or a
// pending nextboot net, which this boot uses up) installs when its
// bootstate is "install ...", boots the OS on its disk when it is "boot",
// and otherwise sits at the network boot prompt. A Behavior.DiskFirst node
// without nextboot net boots the OS on its disk whatever its bootstate, or
// sits when the disk is empty. The caller holds s.mu.
func (s *Server) startSequence(n *node) {
	s.stopSequence(n)
	if s.closed {
		return
	}
	net := !n.behavior.DiskFirst || n.netOnce
	if n.netOnce {
		n.netOnce, n.nextboot = false, "boot override inactive"
	}
	n.from = map[bool]string{true: "network", false: "disk"}[net]
	install := net && strings.HasPrefix(n.bootstate, "install ")
	if !install && (n.disk == "" || net && n.bootstate != "boot") {
		return
	}
	fail := false
	if install {
		fail, n.failOnce = n.failOnce, false
		s.running++
		s.maxSeen = max(s.maxSeen, s.running)
		n.counted = true
	}
	stop := make(chan struct{})
	n.seq = stop
	s.wg.Add(1)
	go s.runSequence(n, stop, install, fail)
}

// stopSequence ends a node's sequence (power off, a new boot, Close); the
// caller holds s.mu.
func (s *Server) stopSequence(n *node) {
	if n.seq != nil {
		close(n.seq)
		n.seq = nil
	}
	if n.counted {
		s.running--
		n.counted = false
	}
}

// runSequence walks a node through its statuses until the end, a stall,
// or stop.
func (s *Server) runSequence(n *node, stop chan struct{}, install, failOnce bool) {
	defer s.wg.Done()
	phase := StatusPoweringOn
	for {
		s.mu.Lock()
		b, t := n.behavior, s.cfg.Timing
		s.mu.Unlock()
		if b.StallAt == phase {
			<-stop
			return
		}
		d, next := nextPhase(phase, install, b, t)
		if next == "" {
			return
		}
		if !wait(d, stop) {
			return
		}
		s.mu.Lock()
		if n.seq != stop {
			s.mu.Unlock()
			return
		}
		if next == StatusBooted && (b.Fail || failOnce) {
			next = StatusFailed
		}
		done := s.enterPhase(n, next)
		s.mu.Unlock()
		if done {
			return
		}
		phase = next
	}
}

// enterPhase writes a node's new status and reports whether its sequence
// ended; the caller holds s.mu.
func (s *Server) enterPhase(n *node, status string) bool {
	s.setStatus(n, status)
	if status == StatusBooting {
		n.bootstate = "boot" // nodeset <n> next, from post.xcat.ng
		n.disk = n.attrs["provmethod"]
	}
	if status != StatusBooted && status != StatusFailed {
		return false
	}
	n.seq = nil
	if n.counted {
		s.running--
		n.counted = false
	}
	if hook := s.cfg.OnBooted; hook != nil && status == StatusBooted {
		name, img := n.name, n.disk
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			hook(name, img)
		}()
	}
	return true
}

// nextPhase is the status after phase and how long until it is written;
// "" means the sequence is over.
func nextPhase(phase string, install bool, b Behavior, t Timing) (time.Duration, string) {
	if !install {
		if phase == StatusPoweringOn {
			return t.PoweringOn + t.Booting, StatusBooted
		}
		return 0, ""
	}
	if b.Flap && phase != StatusPoweringOn {
		every := b.FlapEvery
		if every <= 0 {
			every = t.Installing
		}
		cycle := map[string]string{StatusInstalling: StatusBooting, StatusBooting: StatusPostbooting, StatusPostbooting: StatusInstalling}
		return every, cycle[phase]
	}
	switch phase {
	case StatusPoweringOn:
		return t.PoweringOn, StatusInstalling
	case StatusInstalling:
		return t.Installing, StatusBooting
	case StatusBooting:
		return t.Booting, StatusPostbooting
	case StatusPostbooting:
		return t.Postbooting, StatusBooted
	}
	return 0, ""
}

// wait waits d or until stop is closed; it reports whether d passed.
func wait(d time.Duration, stop chan struct{}) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-stop:
		return false
	}
}
