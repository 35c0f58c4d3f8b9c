package main

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/nomad-ctr/nomad_ctr/tests/harness/internal/host"
	"github.com/nomad-ctr/nomad_ctr/tests/harness/internal/nomadfile"
)

// lifecycle flags shared by run and recover.
type lifecycle struct {
	stopAfter, stopTimeout, waitTimeout, statsInterval time.Duration
	stopSignal                                         string
	signals                                            stringList
	statsSamples                                       int
	doubleWait                                         bool
	logLimit                                           int
}

func (l *lifecycle) register(fs *flag.FlagSet) {
	fs.DurationVar(&l.stopAfter, "stop-after", 0, "call StopTask this long after the task started (0: let it exit by itself)")
	fs.DurationVar(&l.stopTimeout, "stop-timeout", -1, "StopTask timeout (default: the job's kill_timeout capped by the agent's max_kill_timeout)")
	fs.StringVar(&l.stopSignal, "stop-signal", "", "StopTask signal (default: the job's kill_signal)")
	fs.Var(&l.signals, "signal", "SIG or SIG@DELAY: SignalTask after DELAY (default 1s) from the start (repeatable)")
	fs.IntVar(&l.statsSamples, "stats", 0, "read this many TaskStats samples while the task runs")
	fs.DurationVar(&l.statsInterval, "stats-interval", time.Second, "TaskStats collection interval")
	fs.DurationVar(&l.waitTimeout, "wait-timeout", 0, "give up on WaitTask after this long (0: wait forever, as Nomad does)")
	fs.BoolVar(&l.doubleWait, "double-wait", false, "issue a second concurrent WaitTask and check both agree")
	fs.IntVar(&l.logLimit, "log-limit", 65536, "include at most this many bytes of each log file in the JSON")
}

type timedSignal struct {
	sig   string
	delay time.Duration
}

func (l *lifecycle) parseSignals() ([]timedSignal, error) {
	var out []timedSignal
	for _, s := range l.signals {
		sig, d, found := strings.Cut(s, "@")
		ts := timedSignal{sig: sig, delay: time.Second}
		if found {
			var err error
			if ts.delay, err = time.ParseDuration(d); err != nil {
				return nil, fmt.Errorf("--signal %q: %v", s, err)
			}
		}
		out = append(out, ts)
	}
	return out, nil
}

func readLimited(path string, limit int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	if len(b) > limit {
		b = b[len(b)-limit:]
	}
	return string(b)
}

// follow runs the part of the client's task runner after StartTask/RecoverTask:
// WaitTask (plus optional signals, stats, StopTask while it is pending), a
// second WaitTask after exit, InspectTask, DestroyTask(force), and the logs.
func follow(h *host.Host, t *host.Task, l *lifecycle, sigs []timedSignal, out map[string]any) error {
	start := time.Now()
	type waited struct {
		r   *host.WaitResult
		err error
	}
	waitCh := make(chan waited, 1)
	go func() {
		r, err := h.Wait(t.ID(), l.waitTimeout)
		waitCh <- waited{r, err}
	}()
	var second chan waited
	if l.doubleWait {
		second = make(chan waited, 1)
		go func() {
			r, err := h.Wait(t.ID(), l.waitTimeout)
			second <- waited{r, err}
		}()
	}

	var mu sync.Mutex
	var wg sync.WaitGroup
	exited := make(chan struct{})
	var sigResults []map[string]any
	for _, s := range sigs {
		wg.Add(1)
		go func(s timedSignal) {
			defer wg.Done()
			select {
			case <-time.After(time.Until(start.Add(s.delay))):
			case <-exited:
				return
			}
			err := h.Signal(t.ID(), s.sig)
			r := map[string]any{"signal": s.sig, "at": s.delay.String(), "ok": err == nil}
			for k, v := range host.ErrorJSON(err) {
				r[k] = v
			}
			mu.Lock()
			sigResults = append(sigResults, r)
			mu.Unlock()
		}(s)
	}
	if l.statsSamples > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stats, err := h.Stats(t.ID(), l.statsInterval, l.statsSamples)
			samples := make([]any, 0, len(stats))
			for _, s := range stats {
				samples = append(samples, host.StatsJSON(s))
			}
			mu.Lock()
			out["stats"] = samples
			if err != nil {
				out["stats_error"] = host.ErrorJSON(err)
			}
			mu.Unlock()
		}()
	}
	if l.stopAfter > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case <-time.After(time.Until(start.Add(l.stopAfter))):
			case <-exited:
				return
			}
			t0 := time.Now()
			err := h.Stop(t, l.stopTimeout, l.stopSignal)
			mu.Lock()
			out["stopped"] = true
			out["stop_duration_s"] = time.Since(t0).Seconds()
			if err != nil {
				out["stop_error"] = host.ErrorJSON(err)
			}
			mu.Unlock()
		}()
	}

	w := <-waitCh
	close(exited)
	wg.Wait()
	out["signals"] = sigResults
	out["run_duration_s"] = time.Since(start).Seconds()
	if w.err != nil {
		// WaitTask failing is not something a healthy driver does.
		return w.err
	}
	out["result"] = host.WaitJSON(w.r)
	if second != nil {
		w2 := <-second
		out["second_wait"] = host.WaitJSON(w2.r)
		if w2.err != nil || host.WaitJSON(w2.r)["exit_code"] != host.WaitJSON(w.r)["exit_code"] {
			return fmt.Errorf("concurrent WaitTask calls disagree: %v / %v (%v)", host.WaitJSON(w.r), host.WaitJSON(w2.r), w2.err)
		}
	}
	// After exit every WaitTask must return the same result at once.
	again, err := h.Wait(t.ID(), 30*time.Second)
	if err != nil {
		return fmt.Errorf("WaitTask after exit: %w", err)
	}
	if fmt.Sprint(host.WaitJSON(again)) != fmt.Sprint(host.WaitJSON(w.r)) {
		return fmt.Errorf("WaitTask after exit returned %v, first call %v", host.WaitJSON(again), host.WaitJSON(w.r))
	}
	if ins, err := h.Inspect(t.ID()); err != nil {
		out["inspect_error"] = host.ErrorJSON(err)
	} else {
		out["inspect"] = host.ProtoJSON(ins)
	}
	if err := h.Destroy(t, true); err != nil {
		out["destroy_error"] = host.ErrorJSON(err)
	}
	out["stdout"] = readLimited(t.Paths.StdoutFile, l.logLimit)
	out["stderr"] = readLimited(t.Paths.StderrFile, l.logLimit)
	out["events"] = host.EventsJSON(h.Events(), t)
	return nil
}

func cmdRun(args []string) {
	fs := flag.NewFlagSet("run", flag.ExitOnError)
	var c common
	var l lifecycle
	c.register(fs)
	l.register(fs)
	jobFile := fs.String("job", "", "Nomad job file (HCL)")
	task := fs.String("task", "", "task name in the job")
	allocDir := fs.String("alloc-dir", "", "allocation directory to use (default: <alloc-root>/<alloc_id>)")
	allocRoot := fs.String("alloc-root", "", "parent of generated alloc dirs (default: $TMPDIR/nomad-harness)")
	handleOut := fs.String("handle-out", "", "also write the task handle JSON to this file")
	_ = fs.Parse(args)
	if *jobFile == "" || *task == "" {
		usageExit(fs, "--job and --task are required")
	}
	sigs, err := l.parseSignals()
	if err != nil {
		usageExit(fs, err.Error())
	}
	opts, err := c.options()
	if err != nil {
		usageExit(fs, err.Error())
	}
	job, err := nomadfile.ParseJob(*jobFile, *task)
	if err != nil {
		usageExit(fs, err.Error())
	}
	h, err := host.Launch(opts)
	if err != nil {
		finish(nil, err)
	}
	out := map[string]any{"plugin": h.InfoJSON()}
	err = runTask(h, job, *allocRoot, *allocDir, *handleOut, &l, sigs, out)
	out["plugin_events"] = host.EventsJSON(h.Events(), nil)
	h.Kill()
	finish(out, err)
}

func runTask(h *host.Host, job *nomadfile.Task, allocRoot, allocDir, handleOut string, l *lifecycle, sigs []timedSignal, out map[string]any) error {
	t, err := h.PrepareTask(job, allocRoot, allocDir)
	if err != nil {
		return err
	}
	out["task"] = host.TaskJSON(t)
	if err := h.Start(t); err != nil {
		t.StopLogs(0)
		out["events"] = host.EventsJSON(h.Events(), t)
		return err
	}
	out["task"] = host.TaskJSON(t)
	if handleOut != "" {
		if err := os.WriteFile(handleOut, host.ProtoJSON(t.Handle), 0o600); err != nil {
			return err
		}
	}
	return follow(h, t, l, sigs, out)
}
