package main

import (
	"context"
	"syscall"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
)

type taskCreateReq struct {
	Client   uint64 `json:"client"`
	ID       string `json:"id"`
	Stdout   string `json:"stdout"`
	Stderr   string `json:"stderr"`
	Stdin    string `json:"stdin"`
	Terminal *bool  `json:"terminal"` // absent: the container's own spec (process.terminal)
}

type taskReq struct {
	Client uint64 `json:"client"`
	ID     string `json:"id"`
	Force  bool   `json:"force"`
}

type taskKillReq struct {
	Client uint64 `json:"client"`
	ID     string `json:"id"`
	Signal int    `json:"signal"`
	All    bool   `json:"all"`
}

type exitJSON struct {
	ExitCode uint32 `json:"exit_code"`
	ExitedAt string `json:"exited_at"`
}

func init() {
	register("tasks.create", tasksCreate)
	register("tasks.start", withTask(func(ctx context.Context, t containerd.Task, r *taskReq) (any, error) {
		if err := t.Start(ctx); err != nil {
			return nil, err
		}
		return map[string]uint32{"pid": t.Pid()}, nil
	}))
	register("tasks.status", withTask(func(ctx context.Context, t containerd.Task, r *taskReq) (any, error) {
		st, err := t.Status(ctx)
		if err != nil {
			return nil, wrapNotFound("task", r.ID, err)
		}
		out := map[string]any{"status": string(st.Status), "pid": t.Pid(), "exit_code": nil, "exited_at": nil}
		if st.Status == containerd.Stopped {
			out["exit_code"] = st.ExitStatus
			out["exited_at"] = formatTime(st.ExitTime)
		}
		if out["status"] == "" {
			out["status"] = "unknown"
		}
		return out, nil
	}))
	register("tasks.wait", withTask(func(ctx context.Context, t containerd.Task, r *taskReq) (any, error) {
		ch, err := t.Wait(ctx)
		if err != nil {
			return nil, wrapNotFound("task", r.ID, err)
		}
		select {
		case st := <-ch:
			if err := st.Error(); err != nil {
				return nil, err
			}
			return exitJSON{ExitCode: st.ExitCode(), ExitedAt: formatTime(st.ExitTime())}, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}))
	register("tasks.kill", func(c *call) (any, error) {
		var r taskKillReq
		if err := decode(c, &r); err != nil {
			return nil, err
		}
		if r.Signal <= 0 || r.Signal > 64 {
			return nil, invalidArg("signal", r.Signal, "must be a signal number 1..64")
		}
		ctx, t, err := loadTask(c, r.Client, r.ID)
		if err != nil {
			return nil, err
		}
		var opts []containerd.KillOpts
		if r.All {
			opts = append(opts, containerd.WithKillAll)
		}
		if err := t.Kill(ctx, syscall.Signal(r.Signal), opts...); err != nil {
			return nil, wrapNotFound("task", r.ID, err)
		}
		return map[string]any{}, nil
	})
	register("tasks.delete", withTask(func(ctx context.Context, t containerd.Task, r *taskReq) (any, error) {
		var opts []containerd.ProcessDeleteOpts
		if r.Force {
			opts = append(opts, containerd.WithProcessKill)
		}
		st, err := t.Delete(ctx, opts...)
		if err != nil {
			return nil, wrapNotFound("task", r.ID, err)
		}
		return exitJSON{ExitCode: st.ExitCode(), ExitedAt: formatTime(st.ExitTime())}, nil
	}))
	register("tasks.pids", withTask(func(ctx context.Context, t containerd.Task, r *taskReq) (any, error) {
		ps, err := t.Pids(ctx)
		if err != nil {
			return nil, wrapNotFound("task", r.ID, err)
		}
		pids := make([]uint32, 0, len(ps))
		for _, p := range ps {
			pids = append(pids, p.Pid)
		}
		return map[string]any{"pids": pids}, nil
	}))
	register("tasks.metrics", withTask(func(ctx context.Context, t containerd.Task, r *taskReq) (any, error) {
		m, err := t.Metrics(ctx)
		if err != nil {
			return nil, wrapNotFound("task", r.ID, err)
		}
		return decodeMetrics(m)
	}))
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// loadTask loads the container's task without attaching any I/O (recovery-safe).
func loadTask(c *call, client uint64, id string) (context.Context, containerd.Task, error) {
	h, err := getClient(client)
	if err != nil {
		return nil, nil, err
	}
	ctx := h.nsCtx(c)
	ctr, err := loadContainer(ctx, h, id)
	if err != nil {
		return nil, nil, err
	}
	t, err := ctr.Task(ctx, nil)
	if err != nil {
		return nil, nil, wrapNotFound("task", id, err)
	}
	return ctx, t, nil
}

func withTask(f func(ctx context.Context, t containerd.Task, r *taskReq) (any, error)) method {
	return func(c *call) (any, error) {
		var r taskReq
		if err := decode(c, &r); err != nil {
			return nil, err
		}
		ctx, t, err := loadTask(c, r.Client, r.ID)
		if err != nil {
			return nil, err
		}
		return f(ctx, t, &r)
	}
}

func tasksCreate(c *call) (any, error) {
	var r taskCreateReq
	if err := decode(c, &r); err != nil {
		return nil, err
	}
	h, err := getClient(r.Client)
	if err != nil {
		return nil, err
	}
	ctx := h.nsCtx(c)
	ctr, err := loadContainer(ctx, h, r.ID)
	if err != nil {
		return nil, err
	}
	terminal, err := taskTerminal(ctx, ctr, r.Terminal)
	if err != nil {
		return nil, err
	}
	creator, err := directCreator(r.Stdin, r.Stdout, r.Stderr, terminal)
	if err != nil {
		return nil, err
	}
	t, err := ctr.NewTask(ctx, creator)
	if err != nil {
		return nil, err
	}
	return map[string]uint32{"pid": t.Pid()}, nil
}

// taskTerminal is the caller's choice, else what the container's OCI spec says, so a
// container found again later (no spec at hand in the caller) starts as it was made.
func taskTerminal(ctx context.Context, ctr containerd.Container, given *bool) (bool, error) {
	if given != nil {
		return *given, nil
	}
	spec, err := ctr.Spec(ctx)
	if err != nil {
		return false, err
	}
	return spec.Process != nil && spec.Process.Terminal, nil
}
