package main

import (
	"context"
	"encoding/json"
	"sync"
	"time"
)

// op is a cancellable operation with polled progress (gb_op_new/cancel/poll).
type op struct {
	ctx    context.Context
	cancel context.CancelFunc

	mu       sync.Mutex
	progress json.RawMessage
	seq      uint64        // bumped on every progress change
	changed  chan struct{} // closed and replaced on every change
}

func (o *op) kind() string { return "op" }
func (o *op) release()     { o.cancel() }

func newOp() uint64 {
	ctx, cancel := context.WithCancel(context.Background())
	return newHandle(&op{ctx: ctx, cancel: cancel, progress: json.RawMessage("{}"), changed: make(chan struct{})})
}

func cancelOp(h uint64) error {
	o, err := lookup[*op](h, "op")
	if err != nil {
		return err
	}
	o.cancel()
	return nil
}

// setProgress stores v as the op's latest progress and wakes pollers.
func (o *op) setProgress(v any) {
	if o == nil {
		return
	}
	b, err := json.Marshal(v)
	if err != nil {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if string(b) == string(o.progress) {
		return
	}
	o.progress = b
	o.seq++
	close(o.changed)
	o.changed = make(chan struct{})
}

// pollOp waits up to timeout for the next progress change (or the op ending), then returns
// the latest progress; a caller looping on it sees each change, or a repeat after a timeout.
func pollOp(h uint64, timeout time.Duration) (json.RawMessage, error) {
	o, err := lookup[*op](h, "op")
	if err != nil {
		return nil, err
	}
	o.mu.Lock()
	ch := o.changed
	o.mu.Unlock()
	if timeout > 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		select {
		case <-ch:
		case <-t.C:
		case <-o.ctx.Done():
		}
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.progress, nil
}
