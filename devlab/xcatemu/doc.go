// Package xcatemu is an in-process emulator of the xCAT REST API (xcatws),
// written from ../shared/reference/xcat-rest.md because no xCAT can run in
// loadpool's tests or demo. It is an httptest-style server: Start returns a
// running server on a loopback port (TLS with a self-signed certificate, or
// plain HTTP), Close stops it and every goroutine it started.
//
// What it models, as the reference describes it:
//   - the /xcatws and /xcatwsv2 prefixes, trailing '/' removal, JSON-only
//     replies, the unauthenticated resource list at GET /xcatws;
//   - authentication per request (userName/userPW in the query or body) and
//     by token: POST /tokens answers 201 {"token":{"id","expire"}} with
//     expire in the management node's local time, "Y-M-D H:M:S" without
//     zero padding, or "never"; expiry is fixed at creation; unknown or
//     expired tokens and bad passwords answer 401 in the CGI shape;
//   - both error shapes: the CGI shape {"error":"text","errorcode":"2"}
//     (400, 401, 404, 405, 503) and the xcatd shape
//     {"error":["node: ..."],"errorcode":"1"} (403 for every command error);
//   - GET /nodes (with the "Could not find any object definitions" sentence
//     when empty), GET/PUT /nodes/{nr} (only set attributes; "" clears),
//     GET /nodes/{nr}/attrs/{a,b} (every requested attribute, unset as ""),
//     GET/PUT /nodes/{nr}/bootstate (exactly one key: action, osimage or
//     state; side effects of nodeset osimage= on provmethod, os, arch,
//     profile; no status change), GET/PUT /nodes/{nr}/power (on, off,
//     softoff, boot, reset, cycle; reset on a node that is off does nothing
//     and answers 200; on and boot write powering-on, off and softoff
//     powering-off), GET /nodes/{nr}/nodestat, GET/PUT
//     /nodes/{nr}/nextboot, GET /nodes/{nr}/nodels, PUT
//     /nodes/{nr}/provision (nodeset, rsetboot net for mgt ipmi or
//     openbmc, power boot), GET /osimages, /osimages/{img} and
//     /osimages/{img}/attrs/{a,b};
//   - nextboot net as IPMI's one-time boot override: the next power on,
//     boot or reset uses it up (rsetboot stat then says "boot override
//     inactive"); a node whose firmware boots its disk first
//     (Behavior.DiskFirst) installs only with it, and otherwise boots the
//     OS on its disk (powering-on -> booted, bootstate still "install
//     ..."). A bootstate change cancels a pending override: a stand-in for
//     the BMC dropping boot flags 60 s after they are set (IPMI 2.0,
//     Set System Boot Options), since nodeset can take minutes, which is why a client sets
//     nextboot after bootstate and right before power;
//   - 403 "Could not find an object named ..." from lsdef-based endpoints
//     and "Invalid nodes and/or groups in noderange: x" from command
//     endpoints; 404 "Unsupported resource." and "Missed Action.";
//   - a diskful install after nodeset osimage= and power boot, through
//     powering-on -> installing -> booting (bootstate becomes "boot") ->
//     postbooting -> booted (or failed), each status written with a
//     statustime "MM-DD-YYYY HH:MM:SS", with configurable phase times; a
//     later reboot of an installed node goes powering-on -> booted;
//   - query parameters other than the general ones (userName, userPW,
//     pretty, debug, xcoll, ver) merged into the body hash; partial
//     failure: when any node of a range fails, the reply is a 403 with only
//     the errors, though the action ran on the other nodes.
//
// Test controls: a node can be told to stall at a status, to end in failed
// (always, or for its next install only), to change status forever, to boot
// its disk first (SetBehavior, FailNextInstall); every token can be
// dropped, now or when a node reaches a status (DropTokens,
// Behavior.DropTokensAt); every request can be denied with 401 as a policy
// denial does (Deny); the next requests can fail with a 5xx or a transient
// 403 (FailNext); phase times can change (SetTiming). It counts installs
// running at once and the most ever seen (Installs), tokens issued, 401s
// given and requests, and calls Config.OnBooted when a node reaches booted.
// Node reports what a node's last boot booted from (network or disk) and
// the PUT commands it served, in order (NodeState.History).
//
// What it does not model: noderange expressions other than comma lists of
// node names and ALLRESOURCES (no ranges, groups, exclusions, attribute
// selection); node and image creation or deletion through the API
// (POST/DELETE answer 405); the policy table (every valid user may do
// everything, unless Deny); per-request credentials checked against shadow
// hashes (a plain comparison); the passwd table's other keys; the ver=1.0,
// xcoll and debug parameters (ignored); diskless images' netbooting;
// xcatmon's alive/unreachable; nodestat's nmap scan (it answers from power
// and status: noping, "installing prep", "sshd"); boot devices other than
// net and disk (hd, cd, setup are stored, not acted on), persistent
// overrides (rsetboot -p), the 60 s flag timeout itself, and rsetboot
// failing for a mgt that has none (it is served for every node); a
// disk-first node with an empty disk falling back to the network (it sits);
// Apache's 302 from port 80 and its 504 HTML timeout; the exact text of the
// 405 error and of errors the reference does not quote (unsupported nodeset
// states, rpower actions, boot devices); bootstate PUT with several keys
// (the reference says Perl picks one at random: here action, then osimage
// or state, other keys ignored); the debug=1 HTML mixed into the body; and
// real time spent in commands (replies are immediate).
package xcatemu
