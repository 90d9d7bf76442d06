// Package service serves NATS request/reply endpoints under the NATS
// service protocol (ADR-32: $SRV.PING, $SRV.INFO and $SRV.STATS, each
// also as $SRV.<VERB>.<name> and $SRV.<VERB>.<name>.<id>), so that the
// stock `nats micro ls/info/stats` commands show it like any
// nats.go/micro service: the answers are micro's own types.
//
// It differs from micro in one thing: handlers run concurrently, each in
// its own goroutine, and an endpoint's stats count each request's real
// processing time, from its receipt to the handler's return (so after its
// reply is published). micro times its handler's call in the
// subscription's one goroutine, so a service that must answer
// concurrently hands requests off and micro times only the hand-off.
//
// Who blocks: a request takes a slot from Config.Slots before its handler
// starts and gives it back when the handler returns. While no slot is
// free the endpoint's subscription waits (its requests queue in the
// client, within the subscription's pending limits) unless Config.Full
// answers them at once. An Inline endpoint runs its handler in the
// subscription's goroutine and takes no slot: for handlers that never
// block.
//
// Who cancels: nobody. A handler bounds its own work; Stop stops taking
// requests (the endpoints' subscriptions drain: requests already received
// are still handled) and returns once every handler that started has
// returned. A request that arrives after that is answered 503. Stop is
// idempotent; it must not be called from a handler.
//
// Zero values: a nil Config.Slots means DefaultSlots slots; an empty
// Metadata is sent as {} (as micro does). Every endpoint is in the queue
// group "q" (micro's default), so the instances of a service share its
// requests, while every instance answers $SRV requests.
package service
