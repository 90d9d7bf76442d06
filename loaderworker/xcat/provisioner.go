package xcat

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/loadpool/loadpool/progress"

	"github.com/loadpool/loadpool/loaderworker"
	"github.com/loadpool/loadpool/messages"
)

var _ loaderworker.Provisioner = (*Provisioner)(nil)

// AttrNode is the enrolment attribute that names a computer's xCAT node;
// without it the node is the computer's name.
const AttrNode = "node"

// NodeOf is the xCAT node of an enrolled computer: attributes["node"],
// else its name.
func NodeOf(c messages.Computer) string {
	if n := c.Attributes[AttrNode]; n != "" {
		return n
	}
	return c.Name
}

// checkNode refuses a node attribute that is no single xCAT node name (a
// comma, a range or blanks would make it a noderange of several nodes).
func checkNode(c messages.Computer) error {
	if err := messages.ValidComputerName("attributes."+AttrNode, NodeOf(c)); err != nil {
		return fmt.Errorf("%w: computer %s: %v; fix the enrolment (vcl.computer.set)", ErrNodeConfig, c.Name, err)
	}
	return nil
}

// Provisioner installs xCAT osimages on bare-metal nodes.
type Provisioner struct {
	cfg Config
	c   *client
	log *slog.Logger
}

// New checks cfg and returns a provisioner. It does not call xCAT: the
// first load logs in.
func New(cfg Config) (*Provisioner, error) {
	cfg = cfg.withDefaults()
	c, err := newClient(cfg)
	if err != nil {
		return nil, err
	}
	return &Provisioner{cfg: cfg, c: c, log: cfg.Logger.With("provisioner", Name)}, nil
}

// Load installs req.Image.Name (an osimage) on the computer's node (NodeOf) and
// answers once xCAT says booted (ready) or failed (retry), or a timeout
// runs out (retry).
func (p *Provisioner) Load(ctx context.Context, req messages.Request, prog progress.Progress) (loaderworker.LoadReport, error) {
	rep, err := p.load(ctx, req, prog)
	return rep, decide(err)
}

func (p *Provisioner) load(ctx context.Context, req messages.Request, prog progress.Progress) (loaderworker.LoadReport, error) {
	if err := checkNode(req.Computer); err != nil {
		return loaderworker.LoadReport{}, err
	}
	node, img := NodeOf(req.Computer), req.Image.Name
	pm, err := p.c.imageProvmethod(ctx, img)
	if err != nil {
		return loaderworker.LoadReport{}, err
	}
	if pm == "" {
		return loaderworker.LoadReport{}, fmt.Errorf("%w: osimage %s has no provmethod: set osimage.provmethod to install, netboot or statelite", ErrNodeConfig, img)
	}
	before, err := p.c.nodeAttrs(ctx, node, "status", "statustime", "mac", "provmethod", "mgt")
	if err != nil {
		return loaderworker.LoadReport{}, err
	}
	if before["mac"] == "" {
		return loaderworker.LoadReport{}, fmt.Errorf("%w: node %s has no MAC address and nodeset needs one: set mac.mac in xCAT", ErrNodeConfig, node)
	}
	if req.Reload != messages.ReloadAlways && before["provmethod"] == img && running(before["status"]) {
		if rep, ok, err := p.skip(ctx, node, img, before["status"]); err != nil || ok {
			return rep, err
		}
	}
	if err := p.start(ctx, req, before, prog); err != nil {
		return loaderworker.LoadReport{}, err
	}
	return p.watch(ctx, req, prog, before)
}

// running: the node runs what it last installed.
func running(status string) bool { return status == "booted" || status == "alive" }

// skip decides whether a node that already runs img can be left alone: its
// boot state must be boot (no install pending) and its power on.
func (p *Provisioner) skip(ctx context.Context, node, img, status string) (loaderworker.LoadReport, bool, error) {
	bs, err := p.c.bootstate(ctx, node)
	if err != nil {
		return loaderworker.LoadReport{}, false, err
	}
	pw, err := p.c.powerState(ctx, node)
	if err != nil {
		return loaderworker.LoadReport{}, false, err
	}
	if bs != "boot" || pw != "on" {
		return loaderworker.LoadReport{}, false, nil
	}
	return loaderworker.LoadReport{Reloaded: false,
		Detail: fmt.Sprintf("skipped the reload: node %s already runs osimage %s (status %s, bootstate boot, power on)", node, img, status)}, true, nil
}

// start points the node at img and powers it with boot. A BMC-managed
// node gets nextboot net between the two; from attempt 2 on, the node is
// powered off first, so the boot is a cold start.
func (p *Provisioner) start(ctx context.Context, req messages.Request, before map[string]string, prog progress.Progress) error {
	node, img := NodeOf(req.Computer), req.Image.Name
	if req.Attempt >= 2 {
		prog.Event(fmt.Sprintf("xCAT: attempt %d: powering node %s off first, so that the power boot below is a cold start (a full power cycle, not a reset)", req.Attempt, node))
		if err := p.c.power(ctx, node, "off"); err != nil {
			return err
		}
	}
	prog.Event(fmt.Sprintf("xCAT: setting node %s's boot state to osimage %s (status %q)", node, img, before["status"]))
	if err := p.c.setBootstate(ctx, node, img); err != nil {
		return err
	}
	bs, err := p.c.bootstate(ctx, node)
	if err != nil {
		return err
	}
	if !strings.HasPrefix(bs, "install ") && !strings.HasPrefix(bs, "netboot ") && !strings.HasPrefix(bs, "statelite ") {
		// xCAT drops nodeset's warnings: powering now would boot the old OS.
		return fmt.Errorf("xCAT nodeset osimage=%s left node %s with bootstate %q, not an install state; nothing was powered", img, node, bs)
	}
	if mgt := before["mgt"]; bmcManaged(mgt) {
		// rinstall's rsetboot net: firmware that boots its disk first
		// would otherwise start the old OS. Set after nodeset, which can
		// take minutes, because BMCs drop the one-time flag after 60 s.
		prog.Event(fmt.Sprintf("xCAT: node %s is BMC-managed (mgt %s): setting its next boot to the network (rsetboot net)", node, mgt))
		if err := p.c.setNextboot(ctx, node, "net"); err != nil {
			return err
		}
	}
	prog.Event(fmt.Sprintf("xCAT: node %s boot state is %q; powering it with boot", node, bs))
	return p.c.power(ctx, node, "boot")
}

// bmcManaged: the nodes rinstall sends rsetboot net to.
func bmcManaged(mgt string) bool { return mgt == "ipmi" || mgt == "openbmc" }

// Power performs a power action: reset is done as rpower boot, because an
// IPMI reset does nothing to a node that is off.
func (p *Provisioner) Power(ctx context.Context, req messages.PowerRequest) (messages.PowerReply, error) {
	node := NodeOf(req.Computer)
	rep := messages.PowerReply{Computer: req.Computer.Name, Action: req.Action, State: "unknown"}
	if err := checkNode(req.Computer); err != nil {
		return rep, decide(err)
	}
	act := map[string]string{messages.PowerReset: "boot", messages.PowerOn: "on", messages.PowerOff: "off"}[req.Action]
	if act == "" && req.Action != messages.PowerStatus {
		return rep, decide(fmt.Errorf("%w: power action must be reset, on, off or status, not %q", ErrRequest, req.Action))
	}
	if act != "" {
		// One node, not a group: read it before powering it.
		if _, err := p.c.nodeAttrs(ctx, node, "status"); err != nil {
			return rep, decide(err)
		}
		if err := p.c.power(ctx, node, act); err != nil {
			return rep, decide(err)
		}
		rep.Detail = fmt.Sprintf("xCAT rpower %s %s", node, act)
	}
	state, err := p.c.powerState(ctx, node)
	if err != nil {
		return rep, decide(err)
	}
	rep.State = state
	if req.Evidence {
		rep.Detail = strings.TrimSpace(rep.Detail + "; xCAT gives no console screenshot, so no evidence was saved")
	}
	return rep, nil
}
