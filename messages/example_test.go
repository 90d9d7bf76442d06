package messages_test

import (
	"fmt"

	"github.com/loadpool/loadpool/messages"
)

// A job.submit body is decoded, given its defaults and validated in one
// call; the error names the field to fix.
func ExampleDecodeJobSpec() {
	spec, err := messages.DecodeJobSpec([]byte(`{"computer":{"name":"vm-017","provisioner":"vmware","type":"virtualmachine"},
		"image":{"name":"win7-sp1-v3","os_family":"windows","os_version":"7","sysprep":true}}`))
	fmt.Println(spec.MaxAttempts, spec.Reload, spec.Computer.SSHAddress(), err)

	_, err = messages.DecodeJobSpec([]byte(`{"computer":{"name":"vm-017","provisioner":"vm ware","type":"virtualmachine"},"image":{"name":"x","os_family":"windows"}}`))
	fmt.Println(err)
	// Output:
	// 3 if-needed vm-017:22 <nil>
	// computer.provisioner: must be 1-64 letters, digits, '-' or '_' (it becomes a NATS subject token), not "vm ware"
}

// Results written against the seed's Perl convention still decode.
func ExampleDecodeResult() {
	r, _ := messages.DecodeResult([]byte(`{"job_id":"res-1042","attempt":1,"step":"load","outcome":1,"detail":"cloned"}`))
	fmt.Println(r.Outcome)
	// Output: ready
}
