package coordinator_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/loadpool/loadpool/coordinator"
	"github.com/loadpool/loadpool/embednats"
	"github.com/loadpool/loadpool/messages"
	"github.com/nats-io/nats.go"
)

// A coordinator on an embedded NATS server, and a client that submits a
// job, reads it back, and is told exactly what is wrong with a bad one.
func ExampleClient() {
	dir, _ := os.MkdirTemp("", "loadpool-example")
	defer os.RemoveAll(dir)
	srv, err := embednats.Start(embednats.Config{Port: -1, StoreDir: dir})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer srv.Shutdown()
	nc, _ := nats.Connect(srv.URL())
	defer nc.Close()

	subj := messages.Subjects{Prefix: "vcl"}
	quiet := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	co, _ := coordinator.New(nc, coordinator.Config{Subjects: subj, Logger: quiet})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := co.Start(ctx); err != nil {
		fmt.Println(err)
		return
	}
	defer co.Stop()

	cl := coordinator.NewClient(nc, subj)
	e, err := cl.AddComputer(ctx, messages.Computer{Name: "vm-017", Provisioner: "vmware", Type: messages.TypeVirtualMachine, Address: "10.1.0.17"})
	fmt.Println(e.Name, e.State, err)
	rec, err := cl.Submit(ctx, messages.JobSpec{ID: "res-1042", Computer: messages.Computer{Name: "vm-017"},
		Image: messages.Image{Name: "win7-sp1-v3", OSFamily: "windows", OSVersion: "7", Sysprep: true}})
	fmt.Println(rec.ID, rec.State, rec.Attempt, "of", rec.MaxAttempts, rec.Enrolled.Address, err)

	var api *coordinator.APIError
	_, err = cl.Submit(ctx, messages.JobSpec{Computer: messages.Computer{Name: "vm-018"}, Image: messages.Image{Name: "centos-7", OSFamily: "linux"}})
	if errors.As(err, &api) {
		fmt.Println(api.Code, api.Message)
	}
	_, err = cl.Submit(ctx, messages.JobSpec{Computer: messages.Computer{Name: "vm-017", Address: "203.0.113.9"}, Image: messages.Image{Name: "centos-7", OSFamily: "linux"}})
	if errors.As(err, &api) {
		fmt.Println(api.Code, api.Message)
	}
	_, err = cl.Submit(ctx, messages.JobSpec{ID: "res-1043", Computer: messages.Computer{Name: "vm-017"},
		Image: messages.Image{Name: "centos-7", OSFamily: "linux"}})
	if errors.As(err, &api) {
		fmt.Println(api.Code, api.Message)
	}
	// Output:
	// vm-017 available <nil>
	// res-1042 loading 1 of 3 10.1.0.17 <nil>
	// 404 computer vm-018 is not enrolled: enrol it first (loadpool computer add vm-018 --provisioner P --type T, or vcl.computer.add)
	// 400 computer.address: is "203.0.113.9" but vm-017 is enrolled with "10.1.0.17"; a job names an enrolled computer and nothing else about it ("computer": "vm-017")
	// 409 computer vm-017 is busy: job res-1042 holds it (state loading); wait for that job to end or cancel it
}
