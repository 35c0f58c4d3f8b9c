package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	apievents "github.com/containerd/containerd/api/events"
	"github.com/containerd/containerd/v2/core/events"
	"github.com/containerd/typeurl/v2"
)

const maxQueuedEvents = 10000

// subscription is one event stream per client namespace, buffered in a queue that
// events.next drains (polled; no thread per container on the Python side).
type subscription struct {
	cancel  context.CancelFunc
	mu      sync.Mutex
	queue   []eventJSON
	err     string
	changed chan struct{}
}

func (s *subscription) kind() string { return "subscription" }
func (s *subscription) release()     { s.cancel() }

type eventJSON struct {
	Topic       string  `json:"topic"`
	Namespace   string  `json:"namespace"`
	Timestamp   string  `json:"timestamp"`
	ContainerID string  `json:"container_id"`
	ID          string  `json:"id"`
	Pid         *uint32 `json:"pid,omitempty"`
	ExitCode    *uint32 `json:"exit_code,omitempty"`
	ExitedAt    *string `json:"exited_at,omitempty"`
}

type subscribeReq struct {
	Client uint64   `json:"client"`
	Topics []string `json:"topics"`
}

type nextReq struct {
	Subscription uint64 `json:"subscription"`
	Max          int    `json:"max"`
}

func init() {
	register("events.subscribe", eventsSubscribe)
	register("events.next", eventsNext)
}

// eventFilters builds containerd filters: one per topic (OR), each restricted to ns.
func eventFilters(ns string, topics []string) []string {
	if len(topics) == 0 {
		return []string{fmt.Sprintf("namespace==%s", ns)}
	}
	out := make([]string, 0, len(topics))
	for _, t := range topics {
		out = append(out, fmt.Sprintf(`namespace==%s,topic==%q`, ns, t))
	}
	return out
}

func eventsSubscribe(c *call) (any, error) {
	var r subscribeReq
	if err := decode(c, &r); err != nil {
		return nil, err
	}
	h, err := getClient(r.Client)
	if err != nil {
		return nil, err
	}
	for i, t := range r.Topics {
		if len(t) < 2 || t[0] != '/' {
			return nil, invalidArg(fmt.Sprintf("topics[%d]", i), t, `must look like "/tasks/exit"`)
		}
	}
	// The stream outlives this call: detach from its deadline, keep the namespace.
	ctx, cancel := context.WithCancel(detached(h.nsCtx(c)))
	sub := &subscription{cancel: cancel, changed: make(chan struct{})}
	ch, errs := h.c.Subscribe(ctx, eventFilters(h.namespace(c), r.Topics)...)
	go sub.pump(ctx, ch, errs)
	return map[string]uint64{"subscription": newHandle(sub)}, nil
}

func (s *subscription) pump(ctx context.Context, ch <-chan *events.Envelope, errs <-chan error) {
	defer func() {
		if r := recover(); r != nil {
			s.fail(fmt.Sprintf("event stream panicked: %v", r))
		}
	}()
	for {
		select {
		case env := <-ch:
			if env != nil {
				s.push(toEventJSON(env))
			}
		case err := <-errs:
			if ctx.Err() != nil {
				s.fail("subscription closed")
			} else if err != nil {
				s.fail(err.Error())
			} else {
				s.fail("event stream ended")
			}
			return
		}
	}
}

func (s *subscription) push(e eventJSON) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.queue) >= maxQueuedEvents {
		if s.err == "" {
			s.err = fmt.Sprintf("more than %d events queued and not read; events were lost, re-subscribe", maxQueuedEvents)
		}
		return
	}
	s.queue = append(s.queue, e)
	close(s.changed)
	s.changed = make(chan struct{})
}

func (s *subscription) fail(msg string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err == "" {
		s.err = msg
	}
	close(s.changed)
	s.changed = make(chan struct{})
}

// eventsNext waits up to the call deadline for at least one event (or a broken stream);
// a deadline with nothing queued is an empty answer.
func eventsNext(c *call) (any, error) {
	var r nextReq
	if err := decode(c, &r); err != nil {
		return nil, err
	}
	sub, err := lookup[*subscription](r.Subscription, "subscription")
	if err != nil {
		return nil, err
	}
	max := r.Max
	if max <= 0 {
		max = 256
	}
	sub.mu.Lock()
	ready := len(sub.queue) > 0 || sub.err != ""
	ch := sub.changed
	sub.mu.Unlock()
	if !ready {
		select {
		case <-ch:
		case <-c.ctx.Done():
			if c.ctx.Err() == context.Canceled {
				return nil, c.ctx.Err()
			}
		}
	}
	sub.mu.Lock()
	defer sub.mu.Unlock()
	n := len(sub.queue)
	if n > max {
		n = max
	}
	out := append([]eventJSON{}, sub.queue[:n]...)
	sub.queue = sub.queue[n:]
	res := map[string]any{"events": out}
	if sub.err != "" && len(sub.queue) == 0 {
		res["error"] = sub.err
	}
	return res, nil
}

func toEventJSON(env *events.Envelope) eventJSON {
	e := eventJSON{Topic: env.Topic, Namespace: env.Namespace, Timestamp: env.Timestamp.UTC().Format(time.RFC3339Nano)}
	if env.Event == nil {
		return e
	}
	v, err := typeurl.UnmarshalAny(env.Event)
	if err != nil {
		return e
	}
	switch ev := v.(type) {
	case *apievents.TaskExit:
		e.ContainerID, e.ID, e.Pid, e.ExitCode = ev.ContainerID, ev.ID, &ev.Pid, &ev.ExitStatus
		at := ev.ExitedAt.AsTime().UTC().Format(time.RFC3339Nano)
		e.ExitedAt = &at
	case *apievents.TaskOOM:
		e.ContainerID = ev.ContainerID
	case *apievents.TaskStart:
		e.ContainerID, e.Pid = ev.ContainerID, &ev.Pid
	case *apievents.TaskCreate:
		e.ContainerID, e.Pid = ev.ContainerID, &ev.Pid
	case *apievents.TaskDelete:
		e.ContainerID, e.ID, e.Pid, e.ExitCode = ev.ContainerID, ev.ID, &ev.Pid, &ev.ExitStatus
		at := ev.ExitedAt.AsTime().UTC().Format(time.RFC3339Nano)
		e.ExitedAt = &at
	case *apievents.TaskExecAdded:
		e.ContainerID, e.ID = ev.ContainerID, ev.ExecID
	case *apievents.TaskExecStarted:
		e.ContainerID, e.ID, e.Pid = ev.ContainerID, ev.ExecID, &ev.Pid
	case *apievents.TaskPaused:
		e.ContainerID = ev.ContainerID
	case *apievents.TaskResumed:
		e.ContainerID = ev.ContainerID
	case *apievents.ContainerCreate:
		e.ContainerID = ev.ID
	case *apievents.ContainerDelete:
		e.ContainerID = ev.ID
	}
	return e
}
