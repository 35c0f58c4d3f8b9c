package main

import (
	"context"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/identifiers"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"google.golang.org/grpc/health/grpc_health_v1"
)

// clientHandle is a connection plus the namespace requests on it use unless they name
// another ("namespace" in the request, see takeNamespace).
type clientHandle struct {
	c  *containerd.Client
	ns string
}

func (h *clientHandle) kind() string { return "client" }
func (h *clientHandle) release()     { _ = h.c.Close() }

// namespace is the call's namespace: the request's override, else the client's own.
func (h *clientHandle) namespace(c *call) string {
	if c.ns != "" {
		return c.ns
	}
	return h.ns
}

// nsCtx adds the call's namespace to the call context.
func (h *clientHandle) nsCtx(c *call) context.Context {
	return namespaces.WithNamespace(c.ctx, h.namespace(c))
}

func getClient(id uint64) (*clientHandle, error) {
	if id == 0 {
		return nil, invalidArg("client", id, "a client handle is required")
	}
	return lookup[*clientHandle](id, "client")
}

type connectReq struct {
	Address   string `json:"address"`
	Namespace string `json:"namespace"`
	TimeoutMS int64  `json:"timeout_ms"`
}

type clientReq struct {
	Client uint64 `json:"client"`
}

func sleepCtx(ctx context.Context, ms int64) error {
	t := time.NewTimer(time.Duration(ms) * time.Millisecond)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func init() {
	register("client.connect", clientConnect)
	register("client.version", func(c *call) (any, error) {
		var r clientReq
		if err := decode(c, &r); err != nil {
			return nil, err
		}
		h, err := getClient(r.Client)
		if err != nil {
			return nil, err
		}
		v, err := h.c.Version(h.nsCtx(c))
		if err != nil {
			return nil, err
		}
		return map[string]string{"version": v.Version, "revision": v.Revision}, nil
	})
	register("client.health", func(c *call) (any, error) {
		var r clientReq
		if err := decode(c, &r); err != nil {
			return nil, err
		}
		h, err := getClient(r.Client)
		if err != nil {
			return nil, err
		}
		resp, err := h.c.HealthService().Check(h.nsCtx(c), &grpc_health_v1.HealthCheckRequest{})
		if err != nil {
			return nil, err
		}
		return map[string]bool{"serving": resp.Status == grpc_health_v1.HealthCheckResponse_SERVING}, nil
	})
}

// clientConnect dials containerd and checks it answers (Version) within the dial timeout,
// so a wrong address fails here with UNAVAILABLE rather than on first use.
func clientConnect(c *call) (any, error) {
	var r connectReq
	if err := decode(c, &r); err != nil {
		return nil, err
	}
	if r.Address == "" {
		return nil, invalidArg("address", `""`, "a containerd socket address is required")
	}
	if r.Namespace == "" {
		return nil, invalidArg("namespace", `""`, "a namespace is required")
	}
	if err := identifiers.Validate(r.Namespace); err != nil {
		return nil, invalidArg("namespace", r.Namespace, err.Error())
	}
	dial := 10 * time.Second
	if r.TimeoutMS > 0 {
		dial = time.Duration(r.TimeoutMS) * time.Millisecond
	}
	if err := probeSocket(c.ctx, r.Address, dial); err != nil {
		return nil, err
	}
	cl, err := containerd.New(r.Address, containerd.WithDefaultNamespace(r.Namespace), containerd.WithTimeout(dial))
	if err != nil {
		return nil, newError(statusUnavailable, "connect to containerd at %s: %v", r.Address, err)
	}
	ctx, cancel := context.WithTimeout(c.ctx, dial)
	defer cancel()
	if _, err := cl.Version(namespaces.WithNamespace(ctx, r.Namespace)); err != nil {
		_ = cl.Close()
		if c.ctx.Err() != nil {
			return nil, err
		}
		return nil, newError(statusUnavailable, "containerd at %s does not answer: %v", r.Address, err)
	}
	return map[string]uint64{"client": newHandle(&clientHandle{c: cl, ns: r.Namespace})}, nil
}
