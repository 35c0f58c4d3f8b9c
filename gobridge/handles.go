package main

import (
	"runtime/cgo"
	"sync"
)

// releaser is implemented by handle values that own resources (connections, FIFOs, ...).
type releaser interface{ release() }

// kinder names a handle's kind for debug.handles.
type kinder interface{ kind() string }

// registry tracks live cgo.Handle ids so a stale or foreign id gives NOT_FOUND instead of
// the panic cgo.Handle.Value raises on an unknown id.
var registry = struct {
	sync.Mutex
	live map[uint64]string
}{live: map[uint64]string{}}

func newHandle(v any) uint64 {
	h := uint64(cgo.NewHandle(v))
	k := "other"
	if kv, ok := v.(kinder); ok {
		k = kv.kind()
	}
	registry.Lock()
	registry.live[h] = k
	registry.Unlock()
	return h
}

// lookup returns the value behind h if it is live and of type T.
func lookup[T any](h uint64, what string) (T, error) {
	var zero T
	registry.Lock()
	_, ok := registry.live[h]
	registry.Unlock()
	if !ok {
		return zero, newError(statusNotFound, "no live %s handle %d", what, h)
	}
	v, ok := cgo.Handle(h).Value().(T)
	if !ok {
		return zero, newError(statusInvalidArgument, "handle %d is not a %s handle", h, what)
	}
	return v, nil
}

// releaseHandle forgets h and releases what it owns. Releasing twice gives NOT_FOUND.
func releaseHandle(h uint64) error {
	registry.Lock()
	_, ok := registry.live[h]
	delete(registry.live, h)
	registry.Unlock()
	if !ok {
		return newError(statusNotFound, "no live handle %d", h)
	}
	v := cgo.Handle(h).Value()
	cgo.Handle(h).Delete()
	if r, ok := v.(releaser); ok {
		r.release()
	}
	return nil
}

// handleCounts reports live handles by kind (debug.handles; leak tests).
func handleCounts() map[string]int {
	registry.Lock()
	defer registry.Unlock()
	out := map[string]int{"total": len(registry.live)}
	for _, k := range registry.live {
		out[k]++
	}
	return out
}
