package libvirt

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"path/filepath"
	"strings"
	"text/template"
)

// MetadataNS is the namespace of the <metadata> element a load writes
// (image, job, attempt): what reload if-needed reads back.
const MetadataNS = "https://github.com/loadpool/loadpool/libvirt"

// Fw_cfg entries every guest gets (read in the guest under
// /sys/firmware/qemu_fw_cfg/by_name/<name>/raw).
const (
	FwCfgHostname       = "opt/loadpool/hostname"
	FwCfgAuthorizedKeys = "opt/loadpool/authorized_keys"
)

// tag is what a load records in the domain's metadata.
type tag struct {
	XMLName xml.Name `xml:"load"`
	Image   string   `xml:"image"`
	Job     string   `xml:"job"`
	Attempt int      `xml:"attempt"`
}

// parseTag reads the metadata element DomainGetMetadata returns.
func parseTag(s string) (tag, error) {
	var t tag
	err := xml.Unmarshal([]byte(s), &t)
	return t, err
}

// domainSpec is everything a domain definition holds (exported for the
// template).
type domainSpec struct {
	Type, Name, Computer         string
	MemoryMiB, VCPUs, TBCacheMiB int
	SSHPort                      int
	Kernel, Initrd, Cmdline      string
	Overlay, Console, Keys       string
	Image, Job                   string
	Attempt                      int
}

func newSpec(typ string, m machine, img image, p paths, keys string, t tag) domainSpec {
	return domainSpec{Type: typ, Name: m.domain, Computer: m.computer, MemoryMiB: m.memory, VCPUs: m.vcpus,
		TBCacheMiB: m.tbCache, SSHPort: m.sshPort, Kernel: img.kernel, Initrd: img.initrd, Cmdline: img.cmdline,
		Overlay: p.overlay(), Console: p.console(), Keys: keys, Image: t.Image, Job: t.Job, Attempt: t.Attempt}
}

// CPUMode is the guest CPU: everything TCG can emulate, or the host's.
func (d domainSpec) CPUMode() string {
	if d.Type == TypeQEMU {
		return "maximum"
	}
	return "host-passthrough"
}

// NetArg is the user-mode network: restricted (the guest reaches
// nothing), with at most one port forward from 127.0.0.1 to its sshd.
func (d domainSpec) NetArg() string {
	arg := "user,id=lpnet0,restrict=on"
	if d.SSHPort > 0 {
		arg += fmt.Sprintf(",hostfwd=tcp:127.0.0.1:%d-:22", d.SSHPort)
	}
	return arg
}

var funcs = template.FuncMap{"x": func(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}}

var domainXML = template.Must(template.New("domain").Funcs(funcs).Parse(`<domain type='{{.Type}}' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>
  <name>{{x .Name}}</name>
  <metadata><lp:load xmlns:lp='` + MetadataNS + `'><lp:image>{{x .Image}}</lp:image><lp:job>{{x .Job}}</lp:job><lp:attempt>{{.Attempt}}</lp:attempt></lp:load></metadata>
  <memory unit='MiB'>{{.MemoryMiB}}</memory>
  <vcpu>{{.VCPUs}}</vcpu>
  <sysinfo type='fwcfg'>
    <entry name='` + FwCfgHostname + `'>{{x .Computer}}</entry>{{if .Keys}}
    <entry name='` + FwCfgAuthorizedKeys + `'>{{x .Keys}}</entry>{{end}}
  </sysinfo>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>{{if .Kernel}}
    <kernel>{{x .Kernel}}</kernel>
    <initrd>{{x .Initrd}}</initrd>
    <cmdline>{{x .Cmdline}}</cmdline>{{else}}
    <boot dev='hd'/>{{end}}
  </os>
  <features><acpi/>{{if eq .Type "qemu"}}<tcg><tb-cache unit='MiB'>{{.TBCacheMiB}}</tb-cache></tcg>{{end}}</features>
  <cpu mode='{{.CPUMode}}'/>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='{{x .Overlay}}'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <serial type='pty'><log file='{{x .Console}}' append='off'/><target port='0'/></serial>
    <channel type='unix'><target type='virtio' name='org.qemu.guest_agent.0'/></channel>
    <rng model='virtio'><backend model='random'>/dev/urandom</backend></rng>
    <video><model type='vga'/></video>
    <memballoon model='none'/>
  </devices>
  <qemu:commandline>
    <qemu:arg value='-netdev'/>
    <qemu:arg value='{{x .NetArg}}'/>
    <qemu:arg value='-device'/>
    <qemu:arg value='virtio-net-pci,netdev=lpnet0,bus=pci.0,addr=0x10'/>
  </qemu:commandline>
</domain>
`))

// render is the domain's XML definition.
func (d domainSpec) render() (string, error) {
	var b bytes.Buffer
	if err := domainXML.Execute(&b, d); err != nil {
		return "", err
	}
	return b.String(), nil
}

// paths of a domain's files under the state directory.
type paths struct{ dir string }

func (p paths) overlay() string { return filepath.Join(p.dir, "disk.qcow2") }
func (p paths) console() string { return filepath.Join(p.dir, "console.log") }
func (p paths) screen(stamp string) string {
	return filepath.Join(p.dir, "screen-"+stamp+".png")
}
