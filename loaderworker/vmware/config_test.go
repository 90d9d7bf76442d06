package vmware_test

import (
	"testing"
	"time"

	"github.com/kelseyhightower/envconfig"

	"github.com/loadpool/loadpool/loaderworker/vmware"
)

// TestEnv: the LOADPOOL_VSPHERE_* variables map onto Config. Not
// parallel: it sets the environment.
func TestEnv(t *testing.T) {
	for k, v := range map[string]string{
		"LOADPOOL_VSPHERE_URL": "https://vc.example.edu/sdk", "LOADPOOL_VSPHERE_USER": "vcl",
		"LOADPOOL_VSPHERE_PASSWORD": "pw", "LOADPOOL_VSPHERE_INSECURE": "true",
		"LOADPOOL_VSPHERE_DATACENTER": "DC1", "LOADPOOL_VSPHERE_FOLDER": "/DC1/vm/vcl",
		"LOADPOOL_VSPHERE_RESOURCE_POOL": "/DC1/host/C1/Resources", "LOADPOOL_VSPHERE_DATASTORE": "ds1",
		"LOADPOOL_VSPHERE_STRATEGY": "snapshot", "LOADPOOL_VSPHERE_CALL_TIMEOUT": "30s",
		"LOADPOOL_VSPHERE_TASK_TIMEOUT": "1h",
	} {
		t.Setenv(k, v)
	}
	var env vmware.Env
	if err := envconfig.Process("loadpool", &env); err != nil {
		t.Fatal(err)
	}
	got := env.Config(quiet)
	want := vmware.Config{URL: "https://vc.example.edu/sdk", User: "vcl", Password: "pw", Insecure: true,
		Datacenter: "DC1", Folder: "/DC1/vm/vcl", ResourcePool: "/DC1/host/C1/Resources", Datastore: "ds1",
		Strategy: "snapshot", CallTimeout: 30 * time.Second, TaskTimeout: time.Hour, Logger: quiet}
	if got != want {
		t.Fatalf("config\n%+v\nwant\n%+v", got, want)
	}
}
