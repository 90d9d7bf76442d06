package devlab

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"time"

	"github.com/loadpool/loadpool/loaderworker"
	"github.com/loadpool/loadpool/messages"
)

var _ loaderworker.EvidenceReader = (*Sim)(nil)

// ReadEvidence hands over what a simulated console shows after a power
// action with evidence: a SIMULATED screenshot (a stuck boot screen: a
// dark blue screen and a progress bar filled to the boots counted) and a
// serial console log of the computer's state.
func (s *Sim) ReadEvidence(_ context.Context, req messages.PowerRequest, rep messages.PowerReply) ([]loaderworker.Artifact, error) {
	c, err := s.lookup(req.Computer.Name)
	if err != nil {
		return nil, err
	}
	st := c.Snapshot()
	shot, err := stuckScreen(st.Boots)
	if err != nil {
		return nil, err
	}
	log := fmt.Sprintf("SIMULATED serial console of %s\n[    0.000000] loadpool devlab: image %s, boot %d\n[    0.000001] power-on at %s\n[    5.000000] waiting for the OS ... (no SSH answer; the boot hung)\n[   --------] power %s by %s (job %s attempt %d): now %s\n",
		st.Name, st.Image, st.Boots, st.PoweredOn.UTC().Format(time.RFC3339), req.Action, SimName, req.JobID, req.Attempt, rep.State)
	return []loaderworker.Artifact{
		{Name: "screenshot.png", ContentType: "image/png", Data: shot},
		{Name: "serial.log", ContentType: "text/plain; charset=utf-8", Data: []byte(log)},
	}, nil
}

// stuckScreen draws a 640x400 boot screen whose bar shows boots (of 4).
func stuckScreen(boots int) ([]byte, error) {
	img := image.NewRGBA(image.Rect(0, 0, 640, 400))
	draw.Draw(img, img.Bounds(), &image.Uniform{color.RGBA{0x10, 0x20, 0x60, 0xff}}, image.Point{}, draw.Src)
	draw.Draw(img, image.Rect(120, 300, 520, 316), &image.Uniform{color.RGBA{0x40, 0x50, 0x90, 0xff}}, image.Point{}, draw.Src)
	fill := 120 + 400*min(max(boots, 1), 4)/4
	draw.Draw(img, image.Rect(120, 300, fill, 316), &image.Uniform{color.RGBA{0xe0, 0xe0, 0xff, 0xff}}, image.Point{}, draw.Src)
	for i := range 4 { // the spinner that stopped
		x := 300 + i*12
		draw.Draw(img, image.Rect(x, 200, x+8, 208), &image.Uniform{color.RGBA{0xff, 0xff, 0xff, uint8(0x40 + 0x40*i)}}, image.Point{}, draw.Over)
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
