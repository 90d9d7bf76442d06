// Package libvirt is the provisioner for computer.provisioner "libvirt":
// QEMU/KVM virtual machines on this host through libvirtd (VCL's
// libvirt.pm + KVM.pm). It puts an image on a domain and starts it, and
// nothing more: no waiting for the guest OS, no SSH (it links no SSH
// client; see package libvirtd).
//
// Settings (Config, from LOADPOOL_LIBVIRT_*): URI (default
// qemu:///system; the loader runs on the libvirt host), DOMAIN_TYPE kvm
// (default) or qemu (TCG, for hosts where KVM cannot boot guests), IMAGES
// (one directory per image name), STATE_DIR (one directory per domain:
// the overlay, the console log, screen dumps; default
// /var/lib/loadpool/libvirt), AUTHORIZED_KEYS (a file of the OS workers'
// public keys, given to every guest), CALL_TIMEOUT (one operation on
// libvirtd, default 2m).
//
// An image is IMAGES/<name>/ with disk.qcow2 (the base disk, never
// written) and, for a direct kernel boot, vmlinuz, initrd.img and an
// optional cmdline file (default "root=/dev/vda rw console=ttyS0");
// without a kernel the disk's bootloader boots. Files may be symlinks: a
// variant of an image is its own cmdline beside links to the base.
//
// A computer's enrolment attributes (messages.Computer.Attributes):
//   - domain: the libvirt domain name (default: the computer's name);
//   - memory_mib (default 512), vcpus (default 1);
//   - ssh_port: the guest's port 22 is forwarded from 127.0.0.1:<port>
//     (the enrolment's address should be 127.0.0.1:<port>); without it the
//     guest has no port forward (reach it with control "qga");
//   - tb_cache_mib: QEMU's TCG translation cache, type qemu only (default
//     128; QEMU's own default costs ~450 MB more RSS per guest).
//
// Load: the domain is destroyed and undefined if it exists, a fresh qcow2
// overlay is made on the image's base disk (qemu-img create -b), and the
// domain is defined — memory, vCPUs, the overlay as a virtio disk, a
// serial console logged to STATE_DIR/<domain>/console.log, the guest
// agent's virtio channel, a virtio RNG, VGA, the per-computer identity as
// fw_cfg entries (FwCfgHostname: the computer's name; FwCfgAuthorizedKeys:
// AUTHORIZED_KEYS) and the image, job and attempt in its <metadata>
// (MetadataNS) — and started. Networking is QEMU user mode with
// restrict=on (the guest reaches nothing) and at most the one loopback
// port forward, passed as <qemu:commandline> (libvirt marks the domain
// "tainted: custom-argv"). With reload if-needed, a running domain whose
// metadata names the image is left alone: ready, Reloaded false, a detail
// that says it skipped — on any attempt (the conformance suite's rule):
// a job that must reload on its retries says reload always. A load that dies half way leaves at most one
// domain of the name (libvirt's names are unique), which the next load
// destroys and defines again.
//
// Power performs reset, on, off (a hard power-off) and status; with
// Evidence it saves a PNG screen dump first (the QEMU monitor's
// screendump through QEMUDomainMonitorCommand) and names it and the
// console log in the reply; ReadEvidence hands their bytes (the log's last
// MaxConsoleLog bytes) to the loader for the evidence bucket.
//
// Outcomes are decided in one place (classify): no such image, a broken
// image directory, a bad enrolment attribute, a missing qemu-img, a
// power action for a computer without a domain and a definition libvirt
// refuses are wrapped with outcome.Permanent with a sentence that says
// what to fix; libvirtd unreachable, a busy domain, a guest that failed to
// start and deadlines are returned as is (retry). Every operation on
// libvirtd has its own connection and deadline (Config.CallTimeout).
package libvirt
