package vmware

import (
	"context"
	"fmt"
	"io"
	"path"

	"github.com/loadpool/loadpool/loaderworker"
	"github.com/loadpool/loadpool/messages"
	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/vim25/soap"
)

// maxScreenshot bounds the console screenshot read from the datastore.
const maxScreenshot = 16 << 20

var _ loaderworker.EvidenceReader = (*Provisioner)(nil)

// ReadEvidence downloads the console screenshot that Power saved on the
// VM's datastore (the reply's Evidence, "[datastore] vm/vm-1.png"), so
// the loader can keep it in the evidence bucket.
func (p *Provisioner) ReadEvidence(ctx context.Context, _ messages.PowerRequest, rep messages.PowerReply) ([]loaderworker.Artifact, error) {
	var dp object.DatastorePath
	if rep.Evidence == "" || !dp.FromString(rep.Evidence) {
		return nil, nil // no screenshot was taken (the reply's detail says why)
	}
	inv, err := p.inventory(ctx)
	if err != nil {
		return nil, err
	}
	f := find.NewFinder(p.client.Client, true)
	f.SetDatacenter(inv.dc)
	ds, err := f.Datastore(ctx, dp.Datastore)
	if err != nil {
		return nil, fmt.Errorf("datastore %s of the screenshot: %w", dp.Datastore, err)
	}
	r, _, err := ds.Download(ctx, dp.Path, &soap.DefaultDownload)
	if err != nil {
		return nil, fmt.Errorf("download the screenshot %s: %w", rep.Evidence, err)
	}
	defer r.Close()
	data, err := io.ReadAll(io.LimitReader(r, maxScreenshot+1))
	if err != nil {
		return nil, fmt.Errorf("download the screenshot %s: %w", rep.Evidence, err)
	}
	if len(data) > maxScreenshot {
		return nil, fmt.Errorf("the screenshot %s is over %d bytes; not kept", rep.Evidence, maxScreenshot)
	}
	return []loaderworker.Artifact{{Name: "screenshot" + path.Ext(dp.Path), ContentType: "image/png", Data: data}}, nil
}
