package messages

import "time"

// DefaultPowerTimeout bounds one power action: the loader's own bound and
// how long an OS worker waits for the loader's answer.
const DefaultPowerTimeout = 2 * time.Minute

// Pool is the pool that runs step of this spec: the computer's provisioner
// for the load, the image's OS family for the post-load. This is the one
// place that routing is written.
func (s JobSpec) Pool(step string) string {
	if step == StepPostload {
		return s.Image.OSFamily
	}
	return s.Computer.Provisioner
}

// Pool is the pool this request was published to (see JobSpec.Pool).
func (r Request) Pool() string {
	return JobSpec{Computer: r.Computer, Image: r.Image}.Pool(r.Step)
}
