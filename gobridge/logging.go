package main

import (
	"io"
	"os"

	"github.com/containerd/log"
)

// logEnv enables the containerd client's own log on stderr at the given level
// (debug, info, warn, error). By default it is discarded: the host process owns stderr
// (the Nomad plugin writes structured log lines there) and our errors are returned.
const logEnv = "NOMAD_CTR_GOBRIDGE_LOG"

func init() {
	level := os.Getenv(logEnv)
	if level == "" {
		log.L.Logger.SetOutput(io.Discard)
		return
	}
	log.L.Logger.SetOutput(os.Stderr)
	_ = log.SetFormat(log.JSONFormat)
	if err := log.SetLevel(level); err != nil {
		_ = log.SetLevel("info")
	}
}
