// Package windows is the OS module of family "windows" (XP/2003 through
// Vista/2008/7 and later, Sysprep-aware). After a load, in this order:
//
//  1. wait for the computer to answer SSH (osworker.WaitForAnswer with the
//     effective profile; the built-in row is picked by version, computer
//     type and Sysprep: [Profile]);
//  2. when it never answers, WaitForAnswer power-resets it through its
//     loader and waits once more with the post-reset budget, if the
//     profile says so (on_timeout "power-reset"; the XP/2003 row answers
//     retry at once, as Apache VCL's Version_5 does);
//  3. wait until setup is really finished (osworker.WaitUntil, the
//     observed registry state as progress, so the stall timeout works):
//     Vista and later — ImageState IMAGE_STATE_COMPLETE,
//     SystemSetupInProgress 0, OOBEInProgress 0 or absent; XP/2003 — no
//     ImageState, SystemSetupInProgress 0 and MiniSetupInProgress 0 or
//     absent. IMAGE_STATE_UNDEPLOYABLE once setup no longer runs (on two
//     polls in a row: the values are read one at a time) is a failed
//     setup pass: retry (reason "setup-failed"). An audit-mode
//     image, or a Vista+ image without ImageState, is fail: loading it
//     again ends the same way;
//  4. configure, each step idempotent (read first, change only what
//     differs) and reported as an event: the SSH service (sshd, else
//     cygsshd) starts automatically; RDP is enabled (fDenyTSConnections
//     set to 0) and allowed through the firewall from the local subnet
//     (the private network the worker reaches it on) by rule
//     RDPRuleName; the computer description (srvcomment) is the image
//     name;
//  5. answer ready.
//
// # Commands
//
// Commands are plain Windows commands in cmd.exe syntax (Windows OpenSSH's
// default shell); they also run unchanged under Cygwin's bash. reg.exe
// output of both generations is parsed as Apache VCL's reg_query does
// (ParseRegQuery), and exit statuses are trusted over localized text. The
// one value interpolated from a request, the description, is reduced to
// characters that neither shell interprets inside double quotes
// (Description). A change refused for lack of rights ("Access is denied",
// sc's status 5, netsh's elevation message) is Permanent (fail, reason
// "access-denied"); other command failures are retry.
//
// # Who blocks
//
// PostLoad blocks for the whole step; every command has its own deadline
// (CommandTimeout) within the step's context. The module never imports
// x/crypto/ssh: it reaches the computer through osworker/control.
package windows
