package webui

import "github.com/loadpool/loadpool/messages"

func evidenceOf(s messages.StepRecord) []string { return s.Evidence }
