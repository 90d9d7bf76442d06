package libvirt

import (
	"context"
	"fmt"
	"io"
	"os"
	"regexp"

	"github.com/loadpool/loadpool/loaderworker"
	"github.com/loadpool/loadpool/messages"
)

var _ loaderworker.EvidenceReader = (*Provisioner)(nil)

// MaxConsoleLog is how much of the end of a serial console log goes into
// the evidence bucket.
const MaxConsoleLog = 256 << 10

var evidencePaths = regexp.MustCompile(`(?:screen (\S+\.png); )?console log (\S+)`)

// ReadEvidence hands over what Power saved with Evidence: the PNG screen
// dump (when the domain ran) and the end of the serial console log, read
// from the paths Power named in rep.Evidence.
func (p *Provisioner) ReadEvidence(_ context.Context, _ messages.PowerRequest, rep messages.PowerReply) ([]loaderworker.Artifact, error) {
	m := evidencePaths.FindStringSubmatch(rep.Evidence)
	if m == nil {
		return nil, fmt.Errorf("no evidence named in %q", rep.Evidence)
	}
	var arts []loaderworker.Artifact
	if m[1] != "" {
		b, err := os.ReadFile(m[1])
		if err != nil {
			return nil, fmt.Errorf("screen dump: %w", err)
		}
		arts = append(arts, loaderworker.Artifact{Name: "screenshot.png", ContentType: "image/png", Data: b})
	}
	log, err := tail(m[2], MaxConsoleLog)
	if err != nil {
		return arts, fmt.Errorf("console log: %w", err)
	}
	return append(arts, loaderworker.Artifact{Name: "serial.log", ContentType: "text/plain; charset=utf-8", Data: log}), nil
}

// tail reads at most n bytes from the end of a file.
func tail(path string, n int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if fi.Size() > n {
		if _, err := f.Seek(fi.Size()-n, io.SeekStart); err != nil {
			return nil, err
		}
	}
	return io.ReadAll(f)
}
