package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/containerd/errdefs"
	"github.com/containerd/errdefs/pkg/errgrpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Status codes; the numbers are the ABI (gobridge.h).
const (
	statusOK                 = 0
	statusUnknown            = 1
	statusInvalidArgument    = 2
	statusNotFound           = 3
	statusAlreadyExists      = 4
	statusFailedPrecondition = 5
	statusUnavailable        = 6
	statusPermissionDenied   = 7
	statusUnauthenticated    = 8
	statusTimeout            = 9
	statusCancelled          = 10
	statusNotImplemented     = 11
	statusResourceExhausted  = 12
	statusInternal           = 13
	statusPanic              = 14
	statusConflict           = 15
)

var statusNames = map[int32]string{
	statusOK: "OK", statusUnknown: "UNKNOWN", statusInvalidArgument: "INVALID_ARGUMENT",
	statusNotFound: "NOT_FOUND", statusAlreadyExists: "ALREADY_EXISTS",
	statusFailedPrecondition: "FAILED_PRECONDITION", statusUnavailable: "UNAVAILABLE",
	statusPermissionDenied: "PERMISSION_DENIED", statusUnauthenticated: "UNAUTHENTICATED",
	statusTimeout: "TIMEOUT", statusCancelled: "CANCELLED", statusNotImplemented: "NOT_IMPLEMENTED",
	statusResourceExhausted: "RESOURCE_EXHAUSTED", statusInternal: "INTERNAL", statusPanic: "PANIC",
	statusConflict: "CONFLICT",
}

func statusName(s int32) string {
	if n, ok := statusNames[s]; ok {
		return n
	}
	return "UNKNOWN"
}

// codedError carries an explicit status, for errors gobridge raises itself.
type codedError struct {
	status int32
	msg    string
}

func (e *codedError) Error() string { return e.msg }

func newError(status int32, format string, args ...any) error {
	return &codedError{status: status, msg: fmt.Sprintf(format, args...)}
}

func invalidArg(field string, value any, why string) error {
	return newError(statusInvalidArgument, "invalid %s %v: %s", field, value, why)
}

// statusOf classifies an error with the errdefs predicates (after turning gRPC status
// errors into errdefs ones); context errors map to TIMEOUT and CANCELLED.
func statusOf(err error) int32 {
	if err == nil {
		return statusOK
	}
	var ce *codedError
	if errors.As(err, &ce) {
		return ce.status
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return statusTimeout
	}
	if errors.Is(err, context.Canceled) {
		return statusCancelled
	}
	if st := classify(err); st != statusUnknown {
		return st
	}
	// A raw gRPC status error (not yet converted by the client).
	if st := classify(errgrpc.ToNative(err)); st != statusUnknown {
		return st
	}
	return serverContextStatus(err)
}

// serverContextStatus recognises a context error raised on containerd's side: the server
// sees our propagated deadline (or cancellation), and when it fires there first the error
// comes back as gRPC UNKNOWN carrying only the context error's text. The text is all
// there is to go on; it must end the message (Go wraps errors as "what: cause").
func serverContextStatus(err error) int32 {
	msg := err.Error()
	var gs interface{ GRPCStatus() *status.Status }
	if errors.As(err, &gs) && gs.GRPCStatus() != nil {
		s := gs.GRPCStatus() // the server's own status, not the wrapped text
		if s.Code() != codes.Unknown {
			return statusUnknown
		}
		msg = s.Message()
	}
	// An error that crossed gRPC/ttrpc twice (shim -> containerd -> us) was classed
	// "unknown" on the way: "context deadline exceeded: unknown".
	for strings.HasSuffix(msg, ": "+errdefs.ErrUnknown.Error()) {
		msg = strings.TrimSuffix(msg, ": "+errdefs.ErrUnknown.Error())
	}
	switch {
	case endsWithCause(msg, context.DeadlineExceeded.Error()):
		return statusTimeout
	case endsWithCause(msg, context.Canceled.Error()):
		return statusCancelled
	}
	return statusUnknown
}

func endsWithCause(msg, cause string) bool {
	return msg == cause || strings.HasSuffix(msg, ": "+cause)
}

func classify(err error) int32 {
	switch {
	case errdefs.IsInvalidArgument(err):
		return statusInvalidArgument
	case errdefs.IsNotFound(err):
		return statusNotFound
	case errdefs.IsAlreadyExists(err):
		return statusAlreadyExists
	case errdefs.IsFailedPrecondition(err):
		return statusFailedPrecondition
	case errdefs.IsUnavailable(err):
		return statusUnavailable
	case errdefs.IsPermissionDenied(err):
		return statusPermissionDenied
	case errdefs.IsUnauthorized(err):
		return statusUnauthenticated
	case errdefs.IsDeadlineExceeded(err):
		return statusTimeout
	case errdefs.IsCanceled(err):
		return statusCancelled
	case errdefs.IsNotImplemented(err):
		return statusNotImplemented
	case errdefs.IsResourceExhausted(err):
		return statusResourceExhausted
	case errdefs.IsInternal(err), errdefs.IsDataLoss(err):
		return statusInternal
	case errdefs.IsConflict(err), errdefs.IsAborted(err):
		return statusConflict
	case errdefs.IsOutOfRange(err):
		return statusInvalidArgument
	}
	return statusUnknown
}
