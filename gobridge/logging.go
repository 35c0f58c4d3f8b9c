package main

import (
	"io"
	stdlog "log"
	"os"

	"github.com/containerd/log"
	"google.golang.org/grpc/grpclog"
)

// logEnv enables the containerd client's own log on stderr at the given level
// (debug, info, warn, error). By default every Go-side log is discarded: the host process
// owns stderr (the Nomad plugin writes structured log lines there) and our errors are
// returned. The Go-side loggers are containerd's (logrus), gRPC's (grpclog, which writes
// errors to stderr unless told otherwise) and the standard library's log and slog.
const logEnv = "NOMAD_CTR_GOBRIDGE_LOG"

func init() {
	level := os.Getenv(logEnv)
	if level == "" {
		log.L.Logger.SetOutput(io.Discard)
		// Must happen before any gRPC use (grpclog's setter is not synchronised): init is.
		grpclog.SetLoggerV2(grpclog.NewLoggerV2(io.Discard, io.Discard, io.Discard))
		stdlog.SetOutput(io.Discard) // also slog's default handler, which writes through it
		return
	}
	log.L.Logger.SetOutput(os.Stderr)
	_ = log.SetFormat(log.JSONFormat)
	if err := log.SetLevel(level); err != nil {
		_ = log.SetLevel("info")
	}
	// gRPC keeps its own default: errors to stderr, more with GRPC_GO_LOG_SEVERITY_LEVEL.
}
