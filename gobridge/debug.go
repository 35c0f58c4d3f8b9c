package main

// debug.* methods are always compiled in and harmless: they exist so the Python side can
// test panic recovery, handle accounting and error mapping against the real library.

type debugErrorReq struct {
	Status  int32  `json:"status"`
	Message string `json:"message"`
}

type debugSleepReq struct {
	MS int64 `json:"ms"`
}

func init() {
	register("debug.panic", func(c *call) (any, error) {
		panic("debug.panic called on purpose")
	})
	register("debug.handles", func(c *call) (any, error) {
		return handleCounts(), nil
	})
	register("debug.echo", func(c *call) (any, error) {
		return c.req, nil
	})
	register("debug.methods", func(c *call) (any, error) {
		return map[string]any{"methods": methodNames()}, nil
	})
	register("debug.error", func(c *call) (any, error) {
		var r debugErrorReq
		if err := decode(c, &r); err != nil {
			return nil, err
		}
		return nil, newError(r.Status, "%s", r.Message)
	})
	// debug.sleep blocks until the deadline or cancellation (or ms elapses): tests TIMEOUT,
	// CANCELLED and concurrent calls without a containerd.
	register("debug.sleep", func(c *call) (any, error) {
		var r debugSleepReq
		if err := decode(c, &r); err != nil {
			return nil, err
		}
		if err := sleepCtx(c.ctx, r.MS); err != nil {
			return nil, err
		}
		return map[string]any{}, nil
	})
	// debug.progress publishes n progress steps on the op, for gb_op_poll tests.
	register("debug.progress", func(c *call) (any, error) {
		var r struct {
			Steps int   `json:"steps"`
			MS    int64 `json:"ms"`
		}
		if err := decode(c, &r); err != nil {
			return nil, err
		}
		for i := 1; i <= r.Steps; i++ {
			c.op.setProgress(map[string]any{"step": i, "done": i == r.Steps})
			if err := sleepCtx(c.ctx, r.MS); err != nil {
				return nil, err
			}
		}
		return map[string]any{"steps": r.Steps}, nil
	})
}
