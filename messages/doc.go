// Package messages is loadpool's wire contract: the JSON bodies that travel
// between clients, coordinators, loader workers and OS workers, the subjects
// they travel on, the tri-state outcome, and the validation every receiver
// applies before it trusts a body.
//
// It is a leaf: it imports nothing of loadpool's, and every other package
// imports it. Workers written in other languages speak the same JSON; the
// README documents it field by field.
//
// Zero values: an Outcome of "" means "absent" (a malformed result, decided
// as OutcomeFail by DecodeResult); a Subjects with an empty Prefix uses
// DefaultPrefix.
package messages
