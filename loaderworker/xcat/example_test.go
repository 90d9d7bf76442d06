package xcat_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/loadpool/loadpool/devlab/xcatemu"
	"github.com/loadpool/loadpool/loaderworker/xcat"
	"github.com/loadpool/loadpool/messages"
)

type noEvents struct{}

func (noEvents) Event(string) {}

// Example installs an osimage on a node of the xCAT emulator, as `loadpool
// dev` does: the emulator's OnBooted hook is where the demo starts the
// simulated computer behind the node.
func Example() {
	booted := make(chan string, 1)
	emu, err := xcatemu.Start(xcatemu.Config{User: "wsuser", Password: "pw", PlainHTTP: true,
		Timing:   xcatemu.Timing{PoweringOn: 20 * time.Millisecond, Installing: 20 * time.Millisecond, Booting: 20 * time.Millisecond, Postbooting: 20 * time.Millisecond},
		OnBooted: func(node, img string) { booted <- node + " runs " + img }})
	if err != nil {
		panic(err)
	}
	defer emu.Close()
	emu.AddOSImage("rocky9-compute", map[string]string{"provmethod": "install", "profile": "compute", "osvers": "rocky9.4", "osarch": "x86_64"})
	emu.AddNode("blade-01", map[string]string{"mac": "52:54:00:00:00:01"})

	prov, err := xcat.New(xcat.Config{URL: emu.URL(), User: "wsuser", Password: "pw",
		Poll: 10 * time.Millisecond, MinStall: time.Second, MinOverall: 5 * time.Second,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		panic(err)
	}
	req := messages.Request{JobID: "demo", Attempt: 1, Step: messages.StepLoad, Reload: messages.ReloadIfNeeded,
		Computer: messages.Computer{Name: "blade-01", Provisioner: xcat.Name, Type: messages.TypeBlade},
		Image:    messages.Image{Name: "rocky9-compute", OSFamily: "linux"}}
	rep, err := prov.Load(context.Background(), req, noEvents{})
	fmt.Println("reloaded:", rep.Reloaded, "error:", err)
	fmt.Println(<-booted)
	// Output:
	// reloaded: true error: <nil>
	// blade-01 runs rocky9-compute
}
