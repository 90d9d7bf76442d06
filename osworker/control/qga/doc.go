// Package qga is a control method (osworker/control) that reaches a
// computer through the QEMU guest agent instead of SSH: enrolment control
// "qga". It needs no network path to the guest, no SSH key and no host
// key: libvirtd relays the agent's commands over the domain's virtio
// serial channel org.qemu.guest_agent.0 (QEMUDomainAgentCommand).
//
// Contract (the same as control.Conn's):
//   - Dial finds the computer's libvirt domain (enrolment attribute
//     "domain", default the computer's name) and sends guest-ping within
//     Config.Timeout (or ctx's deadline when sooner). A domain that does not
//     exist or does not run, an agent that does not answer yet and libvirtd
//     unreachable all wrap control.ErrNotAnswering, so a wait loop keeps
//     polling.
//   - Run runs cmd as `/bin/sh -c cmd` with guest-exec (output captured),
//     then polls guest-exec-status every Config.Poll until the process has
//     exited, and returns its exit code and its decoded stdout and stderr
//     (-1 when a signal ended it). An agent that goes away meanwhile (the
//     guest reboots) wraps control.ErrNotAnswering (osworker.Session
//     redials once). When ctx ends first Run returns ctx's cause; the
//     guest's process is not killed (the agent has no such command) and
//     runs to its end.
//   - The commands run as the agent's user (root).
//
// Each Dial and Run has its own libvirtd connection (package libvirtd).
// This package links no SSH client, like everything under libvirtd.
package qga
