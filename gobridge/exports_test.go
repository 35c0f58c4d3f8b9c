package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestPanicInMethodBecomesStatusPanic(t *testing.T) {
	st, body := callThroughExport("debug.panic", []byte("{}"), 0)
	if st != statusPanic {
		t.Fatalf("status = %d, want %d", st, statusPanic)
	}
	var e map[string]string
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatal(err)
	}
	if e["code"] != "PANIC" || !strings.Contains(e["message"], "on purpose") {
		t.Fatalf("error body = %v", e)
	}
	// Still usable afterwards.
	if st, _ := callThroughExport("debug.echo", []byte(`{"a":1}`), 0); st != statusOK {
		t.Fatalf("echo after panic: status %d", st)
	}
}

func TestTimeoutAndUnknownMethod(t *testing.T) {
	if st, _ := callThroughExport("debug.sleep", []byte(`{"ms":10000}`), 20); st != statusTimeout {
		t.Fatalf("sleep with deadline: status %d, want TIMEOUT", st)
	}
	if st, _ := callThroughExport("nope", nil, 0); st != statusNotImplemented {
		t.Fatalf("unknown method: status %d", st)
	}
}

func TestStatusOfClassifiesErrdefsGRPCAndContext(t *testing.T) {
	cases := []struct {
		err  error
		want int32
	}{
		{nil, statusOK},
		{fmt.Errorf("wrapped: %w", errdefs.ErrNotFound), statusNotFound},
		{errdefs.ErrAlreadyExists, statusAlreadyExists},
		{errdefs.ErrInvalidArgument, statusInvalidArgument},
		{errdefs.ErrFailedPrecondition, statusFailedPrecondition},
		{errdefs.ErrUnavailable, statusUnavailable},
		{errdefs.ErrPermissionDenied, statusPermissionDenied},
		{errdefs.ErrUnauthenticated, statusUnauthenticated},
		{errdefs.ErrNotImplemented, statusNotImplemented},
		{errdefs.ErrResourceExhausted, statusResourceExhausted},
		{errdefs.ErrInternal, statusInternal},
		{errdefs.ErrConflict, statusConflict},
		{errdefs.ErrAborted, statusConflict},
		{status.Error(codes.NotFound, "gone"), statusNotFound},
		{status.Error(codes.Unavailable, "down"), statusUnavailable},
		{context.DeadlineExceeded, statusTimeout},
		{fmt.Errorf("x: %w", context.Canceled), statusCancelled},
		{newError(statusConflict, "mine"), statusConflict},
		{errors.New("plain"), statusUnknown},
	}
	for _, c := range cases {
		if got := statusOf(c.err); got != c.want {
			t.Errorf("statusOf(%v) = %s, want %s", c.err, statusName(got), statusName(c.want))
		}
	}
}

func TestContextErrorWinsOverServerError(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if st := statusOf(contextError(ctx, errdefs.ErrUnavailable)); st != statusCancelled {
		t.Fatalf("got %s", statusName(st))
	}
}

type fakeResource struct{ released int }

func (f *fakeResource) kind() string { return "fake" }
func (f *fakeResource) release()     { f.released++ }

func TestHandleRegistry(t *testing.T) {
	before := handleCounts()["total"]
	r := &fakeResource{}
	h := newHandle(r)
	if handleCounts()["fake"] != 1 {
		t.Fatalf("counts = %v", handleCounts())
	}
	got, err := lookup[*fakeResource](h, "fake")
	if err != nil || got != r {
		t.Fatalf("lookup = %v, %v", got, err)
	}
	if _, err := lookup[*op](h, "op"); statusOf(err) != statusInvalidArgument {
		t.Fatalf("wrong-type lookup: %v", err)
	}
	if err := releaseHandle(h); err != nil {
		t.Fatal(err)
	}
	if r.released != 1 {
		t.Fatalf("released %d times", r.released)
	}
	if err := releaseHandle(h); statusOf(err) != statusNotFound {
		t.Fatalf("double release: %v", err)
	}
	if _, err := lookup[*fakeResource](h, "fake"); statusOf(err) != statusNotFound {
		t.Fatalf("lookup after release: %v", err)
	}
	if handleCounts()["total"] != before {
		t.Fatalf("leak: %v", handleCounts())
	}
}

func TestHandleRegistryConcurrent(t *testing.T) {
	before := handleCounts()["total"]
	var wg sync.WaitGroup
	for i := 0; i < 32; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 200; j++ {
				h := newOp()
				if err := cancelOp(h); err != nil {
					t.Error(err)
				}
				if err := releaseHandle(h); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	if handleCounts()["total"] != before {
		t.Fatalf("leak: %v", handleCounts())
	}
}

func TestOpProgressPolling(t *testing.T) {
	h := newOp()
	defer releaseHandle(h)
	o, _ := lookup[*op](h, "op")
	p, _ := pollOp(h, 0)
	if string(p) != "{}" {
		t.Fatalf("initial progress %s", p)
	}
	go func() {
		time.Sleep(10 * time.Millisecond)
		o.setProgress(map[string]int{"n": 1})
	}()
	p, _ = pollOp(h, 5*time.Second)
	if string(p) != `{"n":1}` {
		t.Fatalf("progress %s", p)
	}
}
