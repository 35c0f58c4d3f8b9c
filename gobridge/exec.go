package main

import (
	"context"
	"encoding/base64"
	"io"
	"sync"
	"syscall"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/containerd/v2/pkg/oci"
	"github.com/containerd/errdefs"
)

// fifoDir holds the FIFOs of exec processes; cio removes each process's directory.
const fifoDir = "/run/nomad-ctr/gobridge-fifo"

// execHandle is one started exec process. cio copies its FIFOs into the buffers here;
// exec.read drains them (polled, never a callback).
type execHandle struct {
	ctx     context.Context // namespaced, lives as long as the handle
	cancel  context.CancelFunc
	proc    containerd.Process
	stdinW  *io.PipeWriter
	mu      sync.Mutex
	stdout  []byte
	stderr  []byte
	exited  bool
	code    uint32
	exitAt  time.Time
	ioDone  bool
	changed chan struct{}
	done    chan struct{} // closed once exited and all output copied
	deleted bool
}

func (e *execHandle) kind() string { return "exec" }

// release kills a still-running process, deletes it and frees its FIFOs.
func (e *execHandle) release() {
	go func() {
		defer func() { _ = recover() }()
		ctx, cancel := context.WithTimeout(e.ctx, 10*time.Second)
		defer cancel()
		e.mu.Lock()
		exited, deleted := e.exited, e.deleted
		e.mu.Unlock()
		if !exited {
			_ = e.proc.Kill(ctx, syscall.SIGKILL)
		}
		if !deleted {
			_, _ = e.proc.Delete(ctx, containerd.WithProcessKill)
		}
		if e.stdinW != nil {
			_ = e.stdinW.Close()
		}
		if pio := e.proc.IO(); pio != nil {
			pio.Cancel()
			_ = pio.Close()
		}
		e.cancel()
	}()
}

// notify wakes exec.read waiters; call with mu held.
func (e *execHandle) notify() {
	close(e.changed)
	e.changed = make(chan struct{})
}

type streamWriter struct {
	e      *execHandle
	stderr bool
}

func (w streamWriter) Write(p []byte) (int, error) {
	w.e.mu.Lock()
	defer w.e.mu.Unlock()
	if w.stderr {
		w.e.stderr = append(w.e.stderr, p...)
	} else {
		w.e.stdout = append(w.e.stdout, p...)
	}
	w.e.notify()
	return len(p), nil
}

type execReq struct {
	Client uint64   `json:"client"`
	ID     string   `json:"id"`
	ExecID string   `json:"exec_id"`
	Args   []string `json:"args"`
	Env    []string `json:"env"`
	Cwd    string   `json:"cwd"`
	User   string   `json:"user"`
	TTY    bool     `json:"tty"`
	Stdin  bool     `json:"stdin"`
}

type execOpReq struct {
	Exec     uint64 `json:"exec"`
	Data     string `json:"data"`
	MaxBytes int    `json:"max_bytes"`
	Width    uint32 `json:"width"`
	Height   uint32 `json:"height"`
	Signal   int    `json:"signal"`
}

func init() {
	register("tasks.exec", tasksExec)
	register("exec.write", execOp(func(c *call, e *execHandle, r *execOpReq) (any, error) {
		if e.stdinW == nil {
			return nil, newError(statusFailedPrecondition, "exec was started without stdin")
		}
		data, err := base64.StdEncoding.DecodeString(r.Data)
		if err != nil {
			return nil, invalidArg("data", "(base64)", err.Error())
		}
		errc := make(chan error, 1)
		go func() { _, err := e.stdinW.Write(data); errc <- err }()
		select {
		case err := <-errc:
			if err != nil {
				return nil, newError(statusFailedPrecondition, "stdin is closed: %v", err)
			}
			return map[string]any{}, nil
		case <-c.ctx.Done():
			return nil, c.ctx.Err()
		}
	}))
	register("exec.close_stdin", execOp(func(c *call, e *execHandle, r *execOpReq) (any, error) {
		if e.stdinW != nil {
			_ = e.stdinW.Close()
		}
		if err := e.proc.CloseIO(c.ctx, containerd.WithStdinCloser); err != nil && !errdefs.IsNotFound(err) {
			return nil, err
		}
		return map[string]any{}, nil
	}))
	register("exec.read", execOp(execRead))
	register("exec.resize", execOp(func(c *call, e *execHandle, r *execOpReq) (any, error) {
		if err := e.proc.Resize(c.ctx, r.Width, r.Height); err != nil {
			return nil, err
		}
		return map[string]any{}, nil
	}))
	register("exec.kill", execOp(func(c *call, e *execHandle, r *execOpReq) (any, error) {
		if r.Signal <= 0 || r.Signal > 64 {
			return nil, invalidArg("signal", r.Signal, "must be a signal number 1..64")
		}
		if err := e.proc.Kill(c.ctx, syscall.Signal(r.Signal)); err != nil {
			return nil, err
		}
		return map[string]any{}, nil
	}))
	register("exec.wait", execOp(func(c *call, e *execHandle, r *execOpReq) (any, error) {
		select {
		case <-e.done:
		case <-c.ctx.Done():
			return nil, c.ctx.Err()
		}
		e.mu.Lock()
		defer e.mu.Unlock()
		if !e.deleted {
			if _, err := e.proc.Delete(e.ctx); err != nil && !errdefs.IsNotFound(err) {
				return nil, err
			}
			e.deleted = true
		}
		return exitJSON{ExitCode: e.code, ExitedAt: formatTime(e.exitAt)}, nil
	}))
}

func execOp(f func(c *call, e *execHandle, r *execOpReq) (any, error)) method {
	return func(c *call) (any, error) {
		var r execOpReq
		if err := decode(c, &r); err != nil {
			return nil, err
		}
		e, err := lookup[*execHandle](r.Exec, "exec")
		if err != nil {
			return nil, err
		}
		return f(c, e, &r)
	}
}

// execRead waits (up to the call deadline) for output or exit, then drains up to
// max_bytes of each stream. A deadline with nothing new is an empty answer, not an error.
func execRead(c *call, e *execHandle, r *execOpReq) (any, error) {
	max := r.MaxBytes
	if max <= 0 {
		max = 1 << 20
	}
	e.mu.Lock()
	ready := len(e.stdout) > 0 || len(e.stderr) > 0 || e.ioDone
	ch := e.changed
	e.mu.Unlock()
	if !ready {
		select {
		case <-ch:
		case <-e.done:
		case <-c.ctx.Done():
			if c.ctx.Err() == context.Canceled {
				return nil, c.ctx.Err()
			}
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	take := func(b *[]byte) []byte {
		n := len(*b)
		if n > max {
			n = max
		}
		out := append([]byte(nil), (*b)[:n]...)
		*b = (*b)[n:]
		return out
	}
	out, errb := take(&e.stdout), take(&e.stderr)
	res := map[string]any{
		"stdout":     base64.StdEncoding.EncodeToString(out),
		"stderr":     base64.StdEncoding.EncodeToString(errb),
		"stdout_eof": e.ioDone && len(e.stdout) == 0,
		"stderr_eof": e.ioDone && len(e.stderr) == 0,
		"exited":     e.exited && e.ioDone,
	}
	if e.exited && e.ioDone {
		res["exit_code"] = e.code
	}
	return res, nil
}

func tasksExec(c *call) (any, error) {
	var r execReq
	if err := decode(c, &r); err != nil {
		return nil, err
	}
	if len(r.Args) == 0 {
		return nil, invalidArg("args", "[]", "an exec needs a command")
	}
	if r.ExecID == "" {
		return nil, invalidArg("exec_id", `""`, "an exec id is required")
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
	task, err := ctr.Task(ctx, nil)
	if err != nil {
		return nil, wrapNotFound("task", r.ID, err)
	}
	spec, err := ctr.Spec(ctx)
	if err != nil {
		return nil, err
	}
	info, err := ctr.Info(ctx)
	if err != nil {
		return nil, err
	}
	pspec := *spec.Process
	pspec.Args = r.Args
	pspec.Terminal = r.TTY
	if r.Cwd != "" {
		pspec.Cwd = r.Cwd
	}
	if len(r.Env) > 0 || r.User != "" {
		// Reuse the spec options so env merging and user lookup (in the container's
		// rootfs) behave exactly as at create time.
		tmp := *spec
		tmp.Process = &pspec
		var opts []oci.SpecOpts
		if len(r.Env) > 0 {
			opts = append(opts, oci.WithEnv(r.Env))
		}
		if r.User != "" {
			opts = append(opts, oci.WithUser(r.User), oci.WithAdditionalGIDs(r.User))
		}
		if err := oci.ApplyOpts(ctx, h.c, &info, &tmp, opts...); err != nil {
			return nil, newError(statusInvalidArgument, "exec user/env: %v", err)
		}
	}

	hctx, hcancel := context.WithCancel(detached(ctx))
	e := &execHandle{ctx: hctx, cancel: hcancel, changed: make(chan struct{}), done: make(chan struct{})}
	var stdin io.Reader
	if r.Stdin {
		pr, pw := io.Pipe()
		stdin, e.stdinW = pr, pw
	}
	copts := []cio.Opt{cio.WithFIFODir(fifoDir), cio.WithStreams(stdin, streamWriter{e, false}, streamWriter{e, true})}
	if r.TTY {
		copts = append(copts, cio.WithTerminal)
	}
	proc, err := task.Exec(ctx, r.ExecID, &pspec, cio.NewCreator(copts...))
	if err != nil {
		hcancel()
		if errdefs.IsAlreadyExists(err) {
			return nil, newError(statusAlreadyExists, "exec %q already exists in container %q", r.ExecID, r.ID)
		}
		return nil, err
	}
	e.proc = proc
	waitCh, err := proc.Wait(hctx)
	if err != nil {
		cleanupExec(ctx, proc)
		hcancel()
		return nil, err
	}
	if err := proc.Start(ctx); err != nil {
		cleanupExec(ctx, proc)
		hcancel()
		return nil, classifyExecStart(err)
	}
	go e.watch(waitCh)
	return map[string]any{"exec": newHandle(e), "pid": proc.Pid()}, nil
}

// namespaces keeps the namespace of ctx but drops its deadline and cancellation: the
// exec outlives the call that started it.
func detached(ctx context.Context) context.Context { return context.WithoutCancel(ctx) }

func cleanupExec(ctx context.Context, proc containerd.Process) {
	_, _ = proc.Delete(ctx, containerd.WithProcessKill)
	if pio := proc.IO(); pio != nil {
		pio.Cancel()
		_ = pio.Close()
	}
}

// classifyExecStart: runc failing to exec the binary (not found, not executable) is the
// caller's input, reported as INVALID_ARGUMENT.
func classifyExecStart(err error) error {
	if st := statusOf(err); st == statusUnknown || st == statusInternal {
		return newError(statusInvalidArgument, "exec start failed: %v", err)
	}
	return err
}

// watch records the exit, then waits for cio to finish copying so reads see all output.
func (e *execHandle) watch(waitCh <-chan containerd.ExitStatus) {
	defer func() { _ = recover() }()
	st := <-waitCh
	if pio := e.proc.IO(); pio != nil {
		// A background child may keep the FIFOs open; do not wait for it forever.
		copied := make(chan struct{})
		go func() { defer close(copied); pio.Wait() }()
		select {
		case <-copied:
		case <-time.After(5 * time.Second):
		}
	}
	e.mu.Lock()
	e.exited, e.ioDone = true, true
	e.code, e.exitAt = st.ExitCode(), st.ExitTime()
	e.notify()
	e.mu.Unlock()
	close(e.done)
}
