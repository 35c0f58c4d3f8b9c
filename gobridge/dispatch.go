package main

import (
	"bytes"
	"context"
	"encoding/json"
	"sort"
	"strconv"
	"time"

	"github.com/containerd/containerd/v2/pkg/identifiers"
)

// call is what a method handler gets: the context (deadline, op cancel, namespace added by
// the handler), the op for progress (may be nil) and the raw request.
type call struct {
	ctx context.Context
	op  *op
	req json.RawMessage
	ns  string // the request's "namespace" override ("" = the client handle's own)
}

type method func(c *call) (any, error)

var methods = map[string]method{}

func register(name string, m method) { methods[name] = m }

// dispatch runs one gb_call: it resolves the op, applies the timeout and recovers panics
// in the handler so they come back as GB_E_PANIC like panics in the export itself.
func dispatch(opID uint64, name string, req []byte, timeout time.Duration) (res any, err error) {
	m, ok := methods[name]
	if !ok {
		return nil, newError(statusNotImplemented, "unknown method %q", name)
	}
	ctx := context.Background()
	var o *op
	if opID != 0 {
		if o, err = lookup[*op](opID, "op"); err != nil {
			return nil, err
		}
		ctx = o.ctx
	}
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	if len(req) == 0 {
		req = []byte("{}")
	}
	req, ns, err := takeNamespace(req)
	if err != nil {
		return nil, err
	}
	res, err = m(&call{ctx: ctx, op: o, req: req, ns: ns})
	if err != nil {
		err = contextError(ctx, err)
	}
	return res, err
}

// contextError prefers the context's own verdict: a call that failed because its deadline
// passed or its op was cancelled reports TIMEOUT/CANCELLED whatever the server said.
func contextError(ctx context.Context, err error) error {
	switch ctx.Err() {
	case context.DeadlineExceeded:
		return newError(statusTimeout, "deadline exceeded: %v", err)
	case context.Canceled:
		return newError(statusCancelled, "cancelled: %v", err)
	}
	return err
}

// takeNamespace removes the optional "namespace" of a request that carries "client" (it
// overrides the client handle's namespace for this call, so one connection serves any
// namespace) and returns it validated. Other requests keep theirs: client.connect's is
// its own field, and anywhere else strict decoding refuses it.
func takeNamespace(req []byte) ([]byte, string, error) {
	if !bytes.Contains(req, []byte(`"namespace"`)) {
		return req, "", nil
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(req, &fields); err != nil {
		return req, "", nil // not an object: decode reports it
	}
	raw, hasNS := fields["namespace"]
	if _, hasClient := fields["client"]; !hasNS || !hasClient {
		return req, "", nil
	}
	var ns string
	if err := json.Unmarshal(raw, &ns); err != nil {
		return nil, "", invalidArg("namespace", string(raw), "must be a string")
	}
	if err := identifiers.Validate(ns); err != nil {
		return nil, "", invalidArg("namespace", strconv.Quote(ns), err.Error())
	}
	delete(fields, "namespace")
	out, err := json.Marshal(fields)
	if err != nil {
		return nil, "", err
	}
	return out, ns, nil
}

// decode parses the request strictly: unknown fields are an INVALID_ARGUMENT naming them.
func decode(c *call, v any) error {
	dec := json.NewDecoder(bytes.NewReader(c.req))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return newError(statusInvalidArgument, "invalid request: %v", err)
	}
	return nil
}

func methodNames() []string {
	names := make([]string, 0, len(methods))
	for n := range methods {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
