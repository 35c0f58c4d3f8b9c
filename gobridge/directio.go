package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/containerd/containerd/v2/pkg/cio"
	"golang.org/x/sys/unix"
)

// directIO hands plain paths to the shim, which opens them itself: FIFOs as FIFOs, other
// files with O_APPEND. Nothing is copied in this process, so output keeps flowing while
// the Python process is down, and there is nothing to re-attach on recovery.
type directIO struct{ cfg cio.Config }

func (d *directIO) Config() cio.Config { return d.cfg }
func (d *directIO) Cancel()            {}
func (d *directIO) Wait()              {}
func (d *directIO) Close() error       { return nil }

// directCreator returns a cio.Creator for the given paths; an empty stdout/stderr becomes
// /dev/null when the other stream has a path (the shim needs both or neither).
func directCreator(stdin, stdout, stderr string, terminal bool) (cio.Creator, error) {
	for _, p := range []struct{ field, path string }{{"stdin", stdin}, {"stdout", stdout}, {"stderr", stderr}} {
		if p.path != "" && !filepath.IsAbs(p.path) {
			return nil, invalidArg(p.field, p.path, "must be an absolute path")
		}
	}
	if stdout != "" || stderr != "" {
		if stdout == "" {
			stdout = os.DevNull
		}
		if stderr == "" {
			stderr = os.DevNull
		}
	}
	for _, p := range []struct{ field, path string }{{"stdout", stdout}, {"stderr", stderr}} {
		if err := ensureOutput(p.field, p.path); err != nil {
			return nil, err
		}
	}
	if stdin != "" {
		if _, err := os.Stat(stdin); err != nil {
			return nil, invalidArg("stdin", stdin, "does not exist (give a FIFO)")
		}
	}
	cfg := cio.Config{Stdin: stdin, Stdout: stdout, Stderr: stderr, Terminal: terminal}
	return func(string) (cio.IO, error) { return &directIO{cfg: cfg}, nil }, nil
}

// ensureOutput creates a missing regular output file (the shim opens without O_CREAT).
func ensureOutput(field, path string) error {
	if path == "" || path == os.DevNull {
		return nil
	}
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err == nil {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return invalidArg(field, path, fmt.Sprintf("cannot create its directory: %v", err))
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return invalidArg(field, path, fmt.Sprintf("cannot create: %v", err))
	}
	return f.Close()
}
