// Package libvirtd is loadpool's connection to a libvirt daemon, shared by
// the libvirt provisioner (loaderworker/libvirt) and the QEMU guest agent
// control (osworker/control/qga). It speaks libvirtd's RPC protocol over
// its unix socket through github.com/digitalocean/go-libvirt (pure Go, no
// cgo), in loadpool's trimmed copy that links no SSH client (see
// third_party/go-libvirt/README.loadpool.md): this package must never
// pull in golang.org/x/crypto/ssh, as the provisioners depend on it.
//
// Contract:
//   - Do opens one connection for one operation (a load, a power action,
//     one guest command), runs fn on it and closes it. Connections are
//     cheap on the local socket; one per operation means a connection a
//     fault broke is never reused, and a call that hangs can be given up by
//     closing its connection.
//   - go-libvirt's calls take no context: Do bounds fn by ctx and closes
//     the connection when ctx ends first, which makes every call still
//     blocked on it return; Do then returns ctx's error (its cause). fn
//     must not keep using the connection after Do returns.
//   - An error connecting is an *UnreachableError (libvirtd not running,
//     socket missing or refused, bad URI): transient for the callers, with
//     a sentence that says what to check.
package libvirtd
