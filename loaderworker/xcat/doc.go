// Package xcat is the provisioner of bare-metal nodes ("blades") through
// the xCAT REST API (xcatws): computer.provisioner "xcat", image.name an
// xCAT osimage.
//
// # Placement (the enrolment's attributes)
//
// The computer's xCAT node is attributes["node"] ([AttrNode]) when its
// enrolment sets it, else the computer's name ([NodeOf]). It must be one
// node name (letters, digits, '.', '-', '_'): a noderange such as
// "cn01,cn02" or "cn[01-09]" is refused before any call to xCAT (fail,
// reason config), and a name xCAT expands to several nodes (a group,
// ALLRESOURCES) is refused by the first read, before anything is set or
// powered: one computer never powers several nodes. Only that node is
// set, powered and watched.
//
// # Load
//
// Load: check that the osimage exists (fail if not) and that the node has a
// MAC; under reload "if-needed", skip a node that already runs this osimage
// (provmethod), is booted, has bootstate boot and power on; otherwise set
// the boot state (PUT bootstate {"osimage":...}), check that it reads back
// as an install state, set the next boot to the network (PUT nextboot
// {"order":"net"}, rsetboot net, as rinstall does) when the node's mgt is
// ipmi or openbmc (firmware that boots its disk first would start the old
// OS; sent last before power because BMCs drop the one-time flag after
// 60 s), power it with boot, and poll status, statustime and bootstate
// every Config.Poll until status booted (ready, Reloaded) or failed
// (retry). From attempt 2 on (messages.Request.Attempt), the node is
// powered off before the boot state is set, so the boot is a cold start
// (a full power cycle, VCL-style) rather than a reset; an event says so.
// Booted with the boot state still "install ..." means the node booted
// the OS on its disk and never installed: retry. It answers ready when xCAT
// says the install finished, not when the OS answers: that is the OS
// worker's job. Two timeouts, VCL's, bound the watch and answer retry with
// a detail naming which one ran out and the last status: the stall timeout
// (the image's reload_minutes, at least Config.MinStall, default 10m) is
// reset by every change of status or boot state; the overall timeout is
// twice the reload time, at least Config.MinOverall (default 60m).
//
// # Outcomes
//
// Outcomes are decided in one place (decide, from kindOf): a 401 with a
// fresh token, an unknown node or osimage, a node or image not set up for
// provisioning, and a request xCAT cannot serve (400/404/405) answer fail;
// 5xx, timeouts, refused connections and any other 403 are retried inside
// the step with a bounded backoff (Config.Backoff, MaxBackoff, Tries), then
// answer retry.
//
// # Authentication
//
// Authentication: POST /tokens, then X-Auth-Token on every call; the token
// is renewed a little before its expiry (read as local time; an expiry that
// cannot be read or seems past leaves only the next rule) and after any
// 401, once per call. Neither the token nor the password is ever logged or
// put in an error.
//
// # Power
//
// Power: reset is done as rpower boot (an IPMI reset does nothing to a node
// that is off), on, off; status reads rpower stat. Every call has its own
// deadline (Config.CallTimeout).
//
// # Throttle
//
// Throttle: at most N installs at once across the pool is the consumer's
// MaxAckPending (DefaultMaxAckPending, VCL's xcat|throttle, is 10), and
// loaderworker.Config.Settings.Concurrency limits one process.
//
// # Not done
//
// Diskless images are watched like diskful ones (netbooting is a
// status change like any other); nextboot net is sent only to mgt ipmi and
// openbmc (as rinstall does), so a redfish, kvm or other node whose
// firmware does not boot from the network first needs its boot order set
// outside xCAT (such a node is seen booting its old OS: retry); the cold
// start does not wait for power stat to read off before the boot (rpower
// off answers once done); a node whose status never updates
// (site.nodestatus off) is not declared ready from its boot state alone:
// it stalls to retry.
package xcat
