package main

import (
	"flag"
	"os"
	"syscall"
	"time"

	"github.com/nomad-ctr/nomad_ctr/tests/harness/internal/host"
	"github.com/nomad-ctr/nomad_ctr/tests/harness/internal/nomadfile"
)

// cmdStart starts a task and leaves it running: the plugin is then SIGKILLed
// (--leave kill, a plugin crash), shut down as by a stopping agent (--leave
// shutdown), or left alone (--leave detach). Note that the harness's logmon
// ends with the process, unlike Nomad's, so output written meanwhile is lost;
// the session command keeps it running across a plugin crash.
func cmdStart(args []string) {
	fs := flag.NewFlagSet("start", flag.ExitOnError)
	var c common
	c.register(fs)
	jobFile := fs.String("job", "", "Nomad job file (HCL)")
	task := fs.String("task", "", "task name in the job")
	allocDir := fs.String("alloc-dir", "", "allocation directory to use")
	allocRoot := fs.String("alloc-root", "", "parent of generated alloc dirs")
	handleOut := fs.String("handle-out", "", "write the task handle JSON to this file")
	leave := fs.String("leave", "kill", "what to do with the plugin afterwards: kill (SIGKILL), shutdown, detach")
	_ = fs.Parse(args)
	if *jobFile == "" || *task == "" {
		usageExit(fs, "--job and --task are required")
	}
	if *leave != "kill" && *leave != "shutdown" && *leave != "detach" {
		usageExit(fs, "--leave must be kill, shutdown or detach")
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
	t, err := h.PrepareTask(job, *allocRoot, *allocDir)
	if err == nil {
		err = h.Start(t)
		out["task"] = host.TaskJSON(t)
	}
	if err == nil && *handleOut != "" {
		err = os.WriteFile(*handleOut, host.ProtoJSON(t.Handle), 0o600)
	}
	if err != nil {
		h.Kill()
		finish(out, err)
	}
	time.Sleep(200 * time.Millisecond) // let the first output reach the log files
	t.StopLogs(100 * time.Millisecond)
	switch *leave {
	case "kill":
		err = h.Crash(syscall.SIGKILL)
	case "shutdown":
		h.Kill()
	}
	out["left"] = *leave
	finish(out, err)
}

// cmdRecover relaunches the plugin and recovers a task from a handle file as
// the client does after an agent restart, then follows it like run.
func cmdRecover(args []string) {
	fs := flag.NewFlagSet("recover", flag.ExitOnError)
	var c common
	var l lifecycle
	c.register(fs)
	l.register(fs)
	handleFile := fs.String("handle", "", "task handle JSON written by start/run --handle-out")
	jobFile := fs.String("job", "", "job file (optional: kill_timeout/kill_signal for --stop-after)")
	task := fs.String("task", "", "task name in --job")
	keepConfig := fs.Bool("keep-driver-config", false, "keep handle.config.msgpack_driver_config (as after a plugin-only restart); default clears it as after an agent restart")
	_ = fs.Parse(args)
	if *handleFile == "" {
		usageExit(fs, "--handle is required")
	}
	sigs, err := l.parseSignals()
	if err != nil {
		usageExit(fs, err.Error())
	}
	raw, err := os.ReadFile(*handleFile)
	if err != nil {
		usageExit(fs, err.Error())
	}
	hd, err := host.ParseHandle(raw)
	if err != nil {
		usageExit(fs, "handle: "+err.Error())
	}
	var job *nomadfile.Task
	if *jobFile != "" {
		if job, err = nomadfile.ParseJob(*jobFile, *task); err != nil {
			usageExit(fs, err.Error())
		}
	}
	opts, err := c.options()
	if err != nil {
		usageExit(fs, err.Error())
	}
	h, err := host.Launch(opts)
	if err != nil {
		finish(nil, err)
	}
	out := map[string]any{"plugin": h.InfoJSON()}
	t, err := h.Recover(hd, job, nil, !*keepConfig)
	if t != nil {
		out["task"] = host.TaskJSON(t)
	}
	if err == nil {
		err = follow(h, t, &l, sigs, out)
	} else if t != nil {
		t.StopLogs(0)
	}
	out["plugin_events"] = host.EventsJSON(h.Events(), nil)
	h.Kill()
	finish(out, err)
}
