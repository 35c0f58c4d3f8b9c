package main

import (
	"io"
	stdlog "log"
	"log/slog"
	"os"
	"testing"

	"github.com/containerd/log"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc/grpclog"
)

// captureFD2 runs f with file descriptor 2 pointing into a pipe and returns what was
// written there (loggers hold the *os.File of stderr, so swapping os.Stderr is not enough).
func captureFD2(t *testing.T, f func()) string {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	saved, err := unix.Dup(2)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Dup2(int(w.Fd()), 2); err != nil {
		t.Fatal(err)
	}
	f()
	_ = unix.Dup2(saved, 2)
	_ = unix.Close(saved)
	_ = w.Close()
	out, _ := io.ReadAll(r)
	return string(out)
}

func TestGoSideLogsAreSilentByDefault(t *testing.T) {
	if os.Getenv(logEnv) != "" {
		t.Skipf("%s is set", logEnv)
	}
	out := captureFD2(t, func() {
		log.L.Error("containerd client error line")
		log.L.Warn("containerd client warning line")
		grpclog.Error("grpc error line")
		grpclog.Warning("grpc warning line")
		stdlog.Print("stdlib log line")
		slog.Error("slog error line")
	})
	if out != "" {
		t.Fatalf("Go-side logs reached stderr without %s:\n%s", logEnv, out)
	}
}
