package main

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/nomad-ctr/nomad_ctr/tests/harness/internal/host"
	"github.com/nomad-ctr/nomad_ctr/tests/harness/internal/nomadfile"
)

// The session command reads one JSON request per line on stdin and answers
// each with one JSON line on stdout carrying the same "id". Requests run
// concurrently (a pending "wait" does not hold up a "stop"), so the caller
// matches answers by id. Answers have "ok" and, on failure, "error", "stage",
// "refused", "grpc_code". The process state survives plugin crashes: the
// alloc dirs, the logmon copiers and the task handles stay, so a test can
// kill_plugin, launch again and recover.
//
// ops: launch, start, wait, stop, signal, exec, exec_stream, stats, inspect,
// destroy, recover, kill_plugin, shutdown_plugin, events, fingerprint, logs,
// handle, quit. See tests/driver/harness.py for the request fields.

type request struct {
	ID             json.RawMessage `json:"id"`
	Op             string          `json:"op"`
	Job            string          `json:"job"`
	Task           string          `json:"task"`
	TaskID         string          `json:"task_id"`
	AllocDir       string          `json:"alloc_dir"`
	AllocRoot      string          `json:"alloc_root"`
	Timeout        string          `json:"timeout"`
	KillTimeout    string          `json:"kill_timeout"`
	Signal         string          `json:"signal"`
	Command        []string        `json:"command"`
	Stdin          string          `json:"stdin"`
	StdinB64       string          `json:"stdin_b64"`
	CloseStdin     *bool           `json:"close_stdin"`
	TTY            bool            `json:"tty"`
	Interval       string          `json:"interval"`
	Count          int             `json:"count"`
	Force          *bool           `json:"force"`
	Handle         json.RawMessage `json:"handle"`
	KeepConfig     bool            `json:"keep_driver_config"`
	AllowUnhealthy *bool           `json:"allow_unhealthy"`
}

type session struct {
	c     *common
	opts  host.Options
	outMu sync.Mutex

	mu    sync.Mutex
	h     *host.Host
	tasks map[string]*host.Task
	quit  chan struct{}
	// closing is set by teardown: a launch finishing afterwards kills its plugin.
	closing bool
	once    sync.Once
}

func cmdSession(args []string) {
	fs := flag.NewFlagSet("session", flag.ExitOnError)
	var c common
	c.register(fs)
	_ = fs.Parse(args)
	opts, err := c.options()
	if err != nil {
		usageExit(fs, err.Error())
	}
	s := &session{c: &c, opts: opts, tasks: map[string]*host.Task{}, quit: make(chan struct{})}
	lines := make(chan []byte)
	go func() {
		sc := bufio.NewScanner(os.Stdin)
		sc.Buffer(make([]byte, 1<<20), 64<<20)
		for sc.Scan() {
			lines <- append([]byte(nil), sc.Bytes()...)
		}
		close(lines)
	}()
	var wg sync.WaitGroup
loop:
	for {
		select {
		case line, ok := <-lines:
			if !ok {
				break loop
			}
			if len(line) == 0 {
				continue
			}
			var req request
			if err := json.Unmarshal(line, &req); err != nil {
				s.reply(nil, nil, fmt.Errorf("bad request line: %v", err))
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				res, err := s.handle(&req)
				s.reply(req.ID, res, err)
			}()
		case <-s.quit:
			break loop
		}
	}
	// Kill the plugin first so in-flight calls end, let every request answer,
	// then clean up anything a late launch created.
	s.teardown()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
	}
	s.teardown()
	os.Exit(0)
}

func (s *session) reply(id json.RawMessage, res map[string]any, err error) {
	if res == nil {
		res = map[string]any{}
	}
	if id == nil {
		id = json.RawMessage("null")
	}
	res["id"] = id
	res["ok"] = err == nil
	for k, v := range host.ErrorJSON(err) {
		res[k] = v
	}
	b, mErr := json.Marshal(res)
	if mErr != nil {
		b, _ = json.Marshal(map[string]any{"id": id, "ok": false, "error": mErr.Error()})
	}
	s.outMu.Lock()
	os.Stdout.Write(append(b, '\n'))
	s.outMu.Unlock()
}

func (s *session) teardown() {
	s.mu.Lock()
	h := s.h
	s.h = nil
	s.closing = true
	tasks := s.tasks
	s.tasks = map[string]*host.Task{}
	s.mu.Unlock()
	if h != nil && !h.Exited() {
		h.Kill()
	}
	for _, t := range tasks {
		t.StopLogs(200 * time.Millisecond)
	}
}

func (s *session) host() (*host.Host, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.h == nil {
		return nil, errors.New("no plugin launched (send op launch)")
	}
	return s.h, nil
}

func (s *session) task(id string) (*host.Task, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.tasks[id]
	if !ok {
		return nil, fmt.Errorf("the session knows no task %q", id)
	}
	return t, nil
}

func duration(s string, def time.Duration) (time.Duration, error) {
	if s == "" {
		return def, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("duration %q: %v", s, err)
	}
	return d, nil
}

func (s *session) handle(r *request) (map[string]any, error) {
	switch r.Op {
	case "launch":
		s.mu.Lock()
		if s.h != nil && !s.h.Exited() {
			s.mu.Unlock()
			return nil, errors.New("a plugin is already running (kill_plugin or shutdown_plugin first)")
		}
		s.mu.Unlock()
		opts := s.opts
		if r.AllowUnhealthy != nil {
			opts.AllowUnhealthy = *r.AllowUnhealthy
		}
		h, err := host.Launch(opts)
		if err != nil {
			return nil, err
		}
		s.mu.Lock()
		if s.closing {
			s.mu.Unlock()
			h.Kill()
			return nil, errors.New("session is closing")
		}
		s.h = h
		s.mu.Unlock()
		return map[string]any{"plugin": h.InfoJSON(), "task_config_schema": host.ProtoJSON(h.TaskSpecProto),
			"config_schema": host.ProtoJSON(h.ConfigSpec)}, nil

	case "start":
		h, err := s.host()
		if err != nil {
			return nil, err
		}
		job, err := nomadfile.ParseJob(r.Job, r.Task)
		if err != nil {
			return nil, fmt.Errorf("job file: %w", err)
		}
		allocDir := r.AllocDir
		var dup *host.Task
		if r.TaskID != "" { // reuse a known task's id: StartTask must reject it
			if dup, err = s.task(r.TaskID); err != nil {
				return nil, err
			}
			allocDir = dup.Paths.AllocDir
		}
		t, err := h.PrepareTask(job, r.AllocRoot, allocDir)
		if err != nil {
			return nil, err
		}
		if dup != nil {
			t.Config.Id, t.Config.AllocId = dup.ID(), dup.Config.GetAllocId()
		}
		if err := h.Start(t); err != nil {
			return map[string]any{"task": host.TaskJSON(t), "events": host.EventsJSON(h.Events(), t)}, err
		}
		s.mu.Lock()
		s.tasks[t.ID()] = t
		s.mu.Unlock()
		return map[string]any{"task": host.TaskJSON(t)}, nil

	case "recover":
		h, err := s.host()
		if err != nil {
			return nil, err
		}
		var prev *host.Task
		var job *nomadfile.Task
		hd := []byte(r.Handle)
		if len(hd) == 0 {
			if prev, err = s.task(r.TaskID); err != nil {
				return nil, err
			}
			hd = host.ProtoJSON(prev.Handle)
			job = prev.Job
		}
		handle, err := host.ParseHandle(hd)
		if err != nil {
			return nil, fmt.Errorf("handle: %w", err)
		}
		if prev == nil {
			prev, _ = s.task(handle.GetConfig().GetId())
		}
		if prev != nil {
			job = prev.Job
		}
		t, err := h.Recover(handle, job, prev, !r.KeepConfig)
		if t != nil {
			s.mu.Lock()
			s.tasks[t.ID()] = t
			s.mu.Unlock()
		}
		if err != nil {
			return nil, err
		}
		return map[string]any{"task": host.TaskJSON(t)}, nil

	case "kill_plugin":
		h, err := s.host()
		if err != nil {
			return nil, err
		}
		sig := syscall.SIGKILL
		if r.Signal != "" && r.Signal != "SIGKILL" {
			return nil, fmt.Errorf("kill_plugin: only SIGKILL is supported, got %q", r.Signal)
		}
		pid := h.Inst.Pid
		if err := h.Crash(sig); err != nil {
			return nil, err
		}
		s.mu.Lock()
		s.h = nil
		s.mu.Unlock()
		return map[string]any{"pid": pid}, nil

	case "shutdown_plugin":
		h, err := s.host()
		if err != nil {
			return nil, err
		}
		pid := h.Inst.Pid
		h.Kill()
		s.mu.Lock()
		s.h = nil
		s.mu.Unlock()
		return map[string]any{"pid": pid}, nil

	case "events":
		h, err := s.host()
		if err != nil {
			return nil, err
		}
		var t *host.Task
		if r.TaskID != "" {
			if t, err = s.task(r.TaskID); err != nil {
				return nil, err
			}
		}
		return map[string]any{"events": host.EventsJSON(h.Events(), t)}, nil

	case "fingerprint":
		h, err := s.host()
		if err != nil {
			return nil, err
		}
		return map[string]any{"plugin": h.InfoJSON()}, nil

	case "quit":
		s.once.Do(func() { close(s.quit) })
		return map[string]any{}, nil
	}

	// Everything below works on one known task.
	h, err := s.host()
	if err != nil {
		return nil, err
	}
	t, err := s.task(r.TaskID)
	if err != nil {
		return nil, err
	}
	switch r.Op {
	case "wait":
		d, err := duration(r.Timeout, 0)
		if err != nil {
			return nil, err
		}
		w, err := h.Wait(t.ID(), d)
		if err != nil {
			return nil, err
		}
		return map[string]any{"result": host.WaitJSON(w)}, nil

	case "stop":
		d, err := duration(r.KillTimeout, -1)
		if err != nil {
			return nil, err
		}
		t0 := time.Now()
		err = h.Stop(t, d, r.Signal)
		return map[string]any{"duration_s": time.Since(t0).Seconds()}, err

	case "signal":
		return nil, h.Signal(t.ID(), r.Signal)

	case "exec":
		d, err := duration(r.Timeout, 0)
		if err != nil {
			return nil, err
		}
		resp, err := h.Exec(t.ID(), r.Command, d)
		if resp == nil {
			return nil, err
		}
		return map[string]any{"stdout": string(resp.GetStdout()), "stderr": string(resp.GetStderr()),
			"result": host.ExitJSON(resp.GetResult())}, err

	case "exec_stream":
		d, err := duration(r.Timeout, 60*time.Second)
		if err != nil {
			return nil, err
		}
		stdin := []byte(r.Stdin)
		if r.StdinB64 != "" {
			if stdin, err = base64.StdEncoding.DecodeString(r.StdinB64); err != nil {
				return nil, fmt.Errorf("stdin_b64: %v", err)
			}
		}
		closeStdin := r.CloseStdin == nil || *r.CloseStdin
		res, err := h.ExecStream(t.ID(), r.Command, r.TTY, stdin, closeStdin, d)
		if res == nil {
			return nil, err
		}
		return map[string]any{"stdout": string(res.Stdout), "stderr": string(res.Stderr),
			"stdout_closed": res.StdoutClosed, "stderr_closed": res.StderrClosed,
			"messages": res.Messages, "result": host.ExitJSON(res.Result)}, err

	case "stats":
		iv, err := duration(r.Interval, time.Second)
		if err != nil {
			return nil, err
		}
		n := r.Count
		if n <= 0 {
			n = 3
		}
		stats, err := h.Stats(t.ID(), iv, n)
		samples := make([]any, 0, len(stats))
		for _, st := range stats {
			samples = append(samples, host.StatsJSON(st))
		}
		return map[string]any{"samples": samples}, err

	case "inspect":
		resp, err := h.Inspect(t.ID())
		if resp == nil {
			return nil, err
		}
		return map[string]any{"inspect": host.ProtoJSON(resp)}, err

	case "destroy":
		force := r.Force == nil || *r.Force
		err := h.Destroy(t, force)
		if err == nil {
			s.mu.Lock()
			delete(s.tasks, t.ID())
			s.mu.Unlock()
		}
		return map[string]any{"stdout": readLimited(t.Paths.StdoutFile, 1<<20),
			"stderr": readLimited(t.Paths.StderrFile, 1<<20)}, err

	case "logs":
		return map[string]any{"stdout": readLimited(t.Paths.StdoutFile, 1<<20),
			"stderr":      readLimited(t.Paths.StderrFile, 1<<20),
			"stdout_file": t.Paths.StdoutFile, "stderr_file": t.Paths.StderrFile}, nil

	case "handle":
		return map[string]any{"task": host.TaskJSON(t)}, nil
	}
	return nil, fmt.Errorf("unknown op %q", r.Op)
}
