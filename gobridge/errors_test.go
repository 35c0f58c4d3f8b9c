package main

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/containerd/errdefs"
	"github.com/containerd/errdefs/pkg/errgrpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestStatusOfServerSideContextErrors(t *testing.T) {
	cases := []struct {
		name string
		err  error
		want int32
	}{
		{"grpc unknown deadline", status.Error(codes.Unknown, "context deadline exceeded"), statusTimeout},
		{"grpc unknown wrapped deadline", status.Error(codes.Unknown, "failed to create shim task: context deadline exceeded"), statusTimeout},
		{"grpc unknown canceled", status.Error(codes.Unknown, "context canceled"), statusCancelled},
		{"wrapped grpc unknown", fmt.Errorf("tasks.start: %w", status.Error(codes.Unknown, "context deadline exceeded")), statusTimeout},
		{"converted by the client", errgrpc.ToNative(status.Error(codes.Unknown, "context deadline exceeded")), statusTimeout},
		{"converted and wrapped", fmt.Errorf("start: %w", errgrpc.ToNative(status.Error(codes.Unknown, "shim: context canceled"))), statusCancelled},
		{"via the shim", status.Error(codes.Unknown, "context deadline exceeded: unknown"), statusTimeout},
		{"via the shim, converted", errgrpc.ToNative(status.Error(codes.Unknown, "task: context deadline exceeded: unknown")), statusTimeout},
		{"plain text deadline", errors.New("apply layer: context deadline exceeded"), statusTimeout},
		{"grpc deadline code", status.Error(codes.DeadlineExceeded, "whatever"), statusTimeout},
		{"deadline mentioned mid-message stays unknown", status.Error(codes.Unknown, "context deadline exceeded while x"), statusUnknown},
		{"other code keeps its class", status.Error(codes.NotFound, "x: context deadline exceeded"), statusNotFound},
		{"other unknown stays unknown", status.Error(codes.Unknown, "runc did something odd"), statusUnknown},
		{"errdefs class wins", fmt.Errorf("x: %w", errdefs.ErrAlreadyExists), statusAlreadyExists},
		{"local deadline", fmt.Errorf("x: %w", context.DeadlineExceeded), statusTimeout},
	}
	for _, tc := range cases {
		if got := statusOf(tc.err); got != tc.want {
			t.Errorf("%s: statusOf(%q) = %s, want %s", tc.name, tc.err, statusName(got), statusName(tc.want))
		}
	}
}
