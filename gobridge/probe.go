package main

import (
	"context"
	"errors"
	"net"
	"strings"
	"syscall"
	"time"
)

// probeSocket tries the unix socket once before the gRPC dial, so a missing socket file
// or one nothing listens on fails at once (UNAVAILABLE, naming the address) instead of
// after the whole dial timeout, during which gRPC keeps retrying. A socket that accepts
// but never answers passes the probe and is left to the dial timeout.
func probeSocket(ctx context.Context, address string, timeout time.Duration) error {
	path, ok := unixPath(address)
	if !ok {
		return nil // another transport: the gRPC dial decides
	}
	d := net.Dialer{Timeout: timeout}
	conn, err := d.DialContext(ctx, "unix", path)
	if err == nil {
		_ = conn.Close()
		return nil
	}
	switch {
	case errors.Is(err, syscall.ENOENT):
		return newError(statusUnavailable, "containerd is not running at %s: no socket file", address)
	case errors.Is(err, syscall.ECONNREFUSED):
		return newError(statusUnavailable, "containerd is not running at %s: connection refused", address)
	case errors.Is(err, syscall.ENOTDIR):
		return newError(statusUnavailable, "containerd is not running at %s: a parent is not a directory", address)
	case errors.Is(err, syscall.EACCES), errors.Is(err, syscall.EPERM):
		return newError(statusPermissionDenied, "cannot connect to containerd at %s: permission denied", address)
	}
	return nil // anything else (e.g. a full backlog): let the dial and its timeout decide
}

// unixPath is the socket path of a containerd address ("/path" or "unix:///path").
func unixPath(address string) (string, bool) {
	if p, ok := strings.CutPrefix(address, "unix://"); ok {
		return p, true
	}
	if strings.Contains(address, "://") {
		return "", false
	}
	return address, true
}
