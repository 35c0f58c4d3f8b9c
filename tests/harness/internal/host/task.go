package host

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/nomad-ctr/nomad_ctr/tests/harness/internal/allocdir"
	"github.com/nomad-ctr/nomad_ctr/tests/harness/internal/confdec"
	"github.com/nomad-ctr/nomad_ctr/tests/harness/internal/nomadfile"
	"github.com/nomad-ctr/nomad_ctr/tests/harness/pb/drivers"
)

// Task is one task the harness started or recovered.
type Task struct {
	Job     *nomadfile.Task // nil for a task recovered from a handle file
	Paths   allocdir.Paths
	Config  *drivers.TaskConfig
	Handle  *drivers.TaskHandle
	Network *drivers.NetworkOverride
	Decoded confdec.Result
	// GroupNet is the group's bridge network namespace the harness made (nil: none).
	GroupNet *GroupNet
	// coreKey owns the task's reserved cores in the host's coreBook ("": none).
	coreKey string

	logMu  sync.Mutex
	logmon *allocdir.LogMon
}

// ID is the Nomad task id.
func (t *Task) ID() string { return t.Config.GetId() }

func randomHex(n int) string {
	b := make([]byte, (n+1)/2)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)[:n]
}

// NewUUID returns a random UUID like Nomad's alloc and node ids.
func NewUUID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// coreMHz estimates one core's compute in MHz as Nomad's fingerprint does.
func coreMHz() float64 {
	mhz := 0.0
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "cpu MHz" {
				mhz, _ = strconv.ParseFloat(strings.TrimSpace(v), 64)
				break
			}
		}
		f.Close()
	}
	if mhz <= 0 {
		mhz = 1000
	}
	return mhz
}

// nodeCompute estimates the node's total CPU compute in MHz as Nomad does
// (cores × per-core MHz).
func nodeCompute() float64 { return coreMHz() * float64(runtime.NumCPU()) }

var nodeID = NewUUID()

// buildEnv returns the task environment the client would give the driver and
// the eval context for interpolating the job's config block. extraEnv (ports,
// reserved cores) is laid over the base variables.
func (h *Host) buildEnv(job *nomadfile.Task, p allocdir.Paths, allocID string, extraEnv map[string]string) (map[string]string, *hcl.EvalContext, error) {
	hostname, _ := os.Hostname()
	env := map[string]string{
		"NOMAD_ALLOC_ID":       allocID,
		"NOMAD_SHORT_ALLOC_ID": allocID[:8],
		"NOMAD_ALLOC_NAME":     fmt.Sprintf("%s.%s[0]", job.JobName, job.Group),
		"NOMAD_ALLOC_INDEX":    "0",
		"NOMAD_TASK_NAME":      job.Name,
		"NOMAD_GROUP_NAME":     job.Group,
		"NOMAD_JOB_ID":         job.JobID,
		"NOMAD_JOB_NAME":       job.JobName,
		"NOMAD_JOB_PARENT_ID":  "",
		"NOMAD_NAMESPACE":      job.Namespace,
		"NOMAD_REGION":         job.Region,
		"NOMAD_DC":             job.Datacenter,
		"NOMAD_CPU_LIMIT":      strconv.FormatInt(job.CPU, 10),
		"NOMAD_MEMORY_LIMIT":   strconv.FormatInt(job.MemoryMB, 10),
	}
	for k, v := range extraEnv {
		env[k] = v
	}
	if job.MemoryMaxMB > 0 {
		env["NOMAD_MEMORY_MAX_LIMIT"] = strconv.FormatInt(job.MemoryMaxMB, 10)
	}
	// With image/chroot isolation the driver mounts the dirs at fixed paths.
	switch h.Caps.GetFsIsolation() {
	case drivers.DriverCapabilities_NONE:
		env["NOMAD_ALLOC_DIR"], env["NOMAD_TASK_DIR"], env["NOMAD_SECRETS_DIR"] = p.SharedDir, p.LocalDir, p.SecretsDir
	default:
		env["NOMAD_ALLOC_DIR"], env["NOMAD_TASK_DIR"], env["NOMAD_SECRETS_DIR"] = "/alloc", "/local", "/secrets"
	}
	for k, v := range job.Meta {
		env["NOMAD_META_"+k] = v
		env["NOMAD_META_"+strings.ToUpper(k)] = v
	}

	ctxFor := func(env map[string]string) *hcl.EvalContext {
		vars := map[string]cty.Value{}
		envObj := map[string]cty.Value{}
		for k, v := range env {
			envObj[k] = cty.StringVal(v)
			if hclsyntax.ValidIdentifier(k) {
				vars[k] = cty.StringVal(v)
			}
		}
		meta := map[string]cty.Value{}
		for k, v := range job.Meta {
			meta[k] = cty.StringVal(v)
		}
		vars["env"] = cty.ObjectVal(envObj)
		vars["meta"] = cty.ObjectVal(meta)
		vars["node"] = cty.ObjectVal(map[string]cty.Value{
			"unique":     cty.ObjectVal(map[string]cty.Value{"id": cty.StringVal(nodeID), "name": cty.StringVal(hostname)}),
			"datacenter": cty.StringVal(job.Datacenter),
			"region":     cty.StringVal(job.Region),
			"class":      cty.StringVal(""),
		})
		return &hcl.EvalContext{Variables: vars}
	}

	base := ctxFor(env)
	for k, expr := range job.Env {
		v, diags := expr.Value(base)
		if diags.HasErrors() {
			return nil, nil, fmt.Errorf("env %q: %s", k, diags.Error())
		}
		if v.IsNull() || !v.IsKnown() || v.Type() != cty.String {
			return nil, nil, fmt.Errorf("env %q: value must be a string", k)
		}
		env[k] = v.AsString()
	}
	return env, ctxFor(env), nil
}

// PrepareTask does what the client's prestart hooks do: alloc dir, log FIFOs
// (with the harness as logmon), environment, and the config block decoded
// with the plugin's TaskConfigSchema. allocDir "" picks <root>/<alloc_id>.
// Reserved cores (resources.cores) stay the task's until Destroy or a failed Start.
func (h *Host) PrepareTask(job *nomadfile.Task, allocRoot, allocDir string) (_ *Task, retErr error) {
	if job.Driver != h.Info.GetName() {
		return nil, fail("prepare", fmt.Errorf("job task %q uses driver %q but the plugin is %q", job.Name, job.Driver, h.Info.GetName()))
	}
	allocID := NewUUID()
	taskID := allocID + "/" + job.Name + "/" + randomHex(8)
	if allocDir == "" {
		if allocRoot == "" {
			allocRoot = os.TempDir() + "/nomad-harness"
		}
		allocDir = allocRoot + "/" + allocID
	}
	p := allocdir.For(allocDir, job.Name)
	if err := allocdir.Build(p); err != nil {
		return nil, fail("alloc_dir", err)
	}
	var ports []*drivers.PortMapping
	var portEnv map[string]string
	bridge := job.Network != nil && job.Network.Mode == "bridge"
	if job.Network != nil && job.Network.Mode != "host" && !bridge {
		return nil, fail("network", fmt.Errorf("group network mode %q is not modelled (only host and bridge)", job.Network.Mode))
	}
	if bridge {
		var err error
		if ports, portEnv, err = allocatePorts(job.Network); err != nil {
			return nil, fail("network", err)
		}
	}
	cpu, cores, err := h.reserveCores(job, taskID)
	if err != nil {
		return nil, err
	}
	if len(cores) > 0 {
		defer func() {
			if retErr != nil {
				h.cores.release(taskID)
			}
		}()
		if portEnv == nil {
			portEnv = map[string]string{}
		}
		portEnv["NOMAD_CPU_CORES"] = coreList(cores)
		portEnv["NOMAD_CPU_LIMIT"] = strconv.FormatInt(cpu, 10)
	}
	env, ctx, err := h.buildEnv(job, p, allocID, portEnv)
	if err != nil {
		return nil, &StageError{Stage: "validate", Err: err, Refused: true}
	}
	dec, err := confdec.Decode(job.Config, h.TaskSpec, ctx)
	if err != nil {
		// Nomad's "Failed Validation" task event: StartTask is never called.
		return nil, &StageError{Stage: "validate", Err: err, Refused: true}
	}
	mounts, err := h.volumeMounts(job)
	if err != nil {
		// Nomad would not place the alloc on this node
		return nil, &StageError{Stage: "volumes", Err: err, Refused: true}
	}
	var dns *drivers.DNSConfig
	if job.DNS != nil {
		dns = &drivers.DNSConfig{Servers: job.DNS.Servers, Searches: job.DNS.Searches, Options: job.DNS.Options}
	}
	memLimit := job.MemoryMB
	if job.MemoryMaxMB > memLimit {
		memLimit = job.MemoryMaxMB
	}
	hostname, _ := os.Hostname()
	cfg := &drivers.TaskConfig{
		Id:                  taskID,
		Name:                job.Name,
		MsgpackDriverConfig: dec.Msgpack,
		Env:                 env,
		DeviceEnv:           map[string]string{},
		Resources: &drivers.Resources{
			AllocatedResources: &drivers.AllocatedTaskResources{
				Cpu:    &drivers.AllocatedCpuResources{CpuShares: cpu},
				Memory: &drivers.AllocatedMemoryResources{MemoryMb: job.MemoryMB, MemoryMaxMb: job.MemoryMaxMB},
			},
			LinuxResources: &drivers.LinuxResources{
				CpuShares:        cpu,
				MemoryLimitBytes: memLimit * 1024 * 1024,
				PercentTicks:     float64(cpu) / nodeCompute(),
				CpusetCpus:       joinCores(cores),
			},
		},
		User:          job.User,
		AllocDir:      p.AllocDir,
		StdoutPath:    p.StdoutFIFO,
		StderrPath:    p.StderrFIFO,
		TaskGroupName: job.Group,
		JobName:       job.JobName,
		JobId:         job.JobID,
		AllocId:       allocID,
		Namespace:     job.Namespace,
		NodeName:      hostname,
		NodeId:        nodeID,
		Mounts:        mounts,
		Dns:           dns,
	}
	t := &Task{Job: job, Paths: p, Config: cfg, Decoded: dec}
	if len(cores) > 0 {
		t.coreKey = taskID
	}
	if bridge {
		// the client's network hook: the namespace exists before any task starts
		gn, err := setupGroupNet(allocID, ports)
		if err != nil {
			return nil, fail("network", err)
		}
		t.GroupNet = gn
		cfg.Resources.Ports = ports
		cfg.NetworkIsolationSpec = &drivers.NetworkIsolationSpec{
			Mode: drivers.NetworkIsolationSpec_GROUP, Path: gn.NetnsPath, Labels: map[string]string{},
		}
		if job.Network.Hostname != "" {
			cfg.NetworkIsolationSpec.HostsConfig = &drivers.HostsConfig{Hostname: job.Network.Hostname, Address: gn.IP}
		}
	}
	return t, nil
}

// reserveCores does the scheduler's and client's part for resources.cores:
// specific cores from the node's online CPUs (highest ids first) reserved for
// taskID, and the cpu shares they stand for (cores × per-core MHz). Without
// cores: the job's cpu and no cores.
func (h *Host) reserveCores(job *nomadfile.Task, taskID string) (int64, []int, error) {
	if job.Cores <= 0 {
		return job.CPU, nil, nil
	}
	online, err := onlineCPUs()
	if err != nil {
		return 0, nil, fail("resources", err)
	}
	cores, err := h.cores.reserve(taskID, int(job.Cores), online)
	if err != nil {
		// Nomad would not place the alloc on this node
		return 0, nil, &StageError{Stage: "resources", Err: err, Refused: true}
	}
	return int64(float64(len(cores)) * coreMHz()), cores, nil
}

// volumeMounts resolves the task's host volume mounts against the agent's
// client host_volume blocks, as the client's volume hook does.
func (h *Host) volumeMounts(job *nomadfile.Task) ([]*drivers.Mount, error) {
	var out []*drivers.Mount
	for _, vm := range job.VolumeMounts {
		if vm.Type != "host" {
			return nil, fmt.Errorf("volume %q: type %q is not modelled (only host volumes)", vm.Volume, vm.Type)
		}
		var hv nomadfile.HostVolume
		ok := false
		if h.opts.Agent != nil {
			hv, ok = h.opts.Agent.HostVolumes[vm.Source]
		}
		if !ok || hv.Path == "" {
			return nil, fmt.Errorf("host volume %q (volume %q) is not in the agent's client config", vm.Source, vm.Volume)
		}
		out = append(out, &drivers.Mount{
			TaskPath:        vm.Destination,
			HostPath:        hv.Path,
			Readonly:        vm.ReadOnly || hv.ReadOnly,
			PropagationMode: vm.Propagation,
		})
	}
	return out, nil
}

// StartLogs (re)starts the harness's logmon for t; a no-op when running.
func (t *Task) StartLogs() error {
	t.logMu.Lock()
	defer t.logMu.Unlock()
	if t.logmon != nil {
		return nil
	}
	if err := allocdir.Build(t.Paths); err != nil {
		return err
	}
	lm, err := allocdir.StartLogMon(t.Paths)
	if err != nil {
		return err
	}
	t.logmon = lm
	return nil
}

// StopLogs drains and closes the log copiers.
func (t *Task) StopLogs(quiet time.Duration) {
	t.logMu.Lock()
	defer t.logMu.Unlock()
	if t.logmon != nil {
		t.logmon.Stop(quiet)
		t.logmon = nil
	}
}

// Start calls StartTask and checks the response as the client relies on it.
func (h *Host) Start(t *Task) error {
	if err := t.StartLogs(); err != nil {
		return fail("logmon", err)
	}
	resp, err := h.Inst.Driver.Driver.StartTask(context.Background(), &drivers.StartTaskRequest{Task: t.Config})
	if err != nil {
		t.StopLogs(0)
		h.cores.release(t.coreKey)
		if nerr := t.ReleaseNetwork(); nerr != nil {
			h.opts.Logger.Warn("group network teardown failed", "error", nerr)
		}
		return refusal("start_task", err)
	}
	hd := resp.GetHandle()
	if hd == nil {
		return fail("start_task", errors.New("response has no handle"))
	}
	if hd.GetConfig() == nil || hd.GetConfig().GetId() != t.Config.GetId() {
		return fail("start_task", fmt.Errorf("handle.config.id = %q, want %q", hd.GetConfig().GetId(), t.Config.GetId()))
	}
	if hd.GetVersion() == 0 {
		h.opts.Logger.Warn("handle version is 0 (reserved for pre-0.9 handles)")
	}
	t.Handle = hd
	t.Network = resp.GetNetworkOverride()
	return nil
}

// WaitResult is what WaitTask returned.
type WaitResult struct {
	Result *drivers.ExitResult
	Err    string
}

// Wait calls WaitTask; timeout 0 waits forever (as Nomad does).
func (h *Host) Wait(taskID string, timeout time.Duration) (*WaitResult, error) {
	ctx := context.Background()
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	resp, err := h.Inst.Driver.Driver.WaitTask(ctx, &drivers.WaitTaskRequest{TaskId: taskID})
	if err != nil {
		return nil, refusal("wait_task", err)
	}
	if resp.GetResult() == nil && resp.GetErr() == "" {
		return nil, fail("wait_task", errors.New("response has neither result nor err"))
	}
	return &WaitResult{Result: resp.GetResult(), Err: resp.GetErr()}, nil
}

// KillTimeout is the StopTask timeout the client would send for t.
func (h *Host) KillTimeout(t *Task) time.Duration {
	kt := nomadfile.DefaultKillTimeout
	if t.Job != nil {
		kt = t.Job.KillTimeout
	}
	max := 30 * time.Second
	if h.opts.Agent != nil {
		max = h.opts.Agent.MaxKillTimeout
	}
	if kt > max {
		kt = max
	}
	return kt
}

// Stop calls StopTask. timeout < 0 / signal "" take the job's values.
func (h *Host) Stop(t *Task, timeout time.Duration, signal string) error {
	if timeout < 0 {
		timeout = h.KillTimeout(t)
	}
	if signal == "" && t.Job != nil {
		signal = t.Job.KillSignal
	}
	_, err := h.Inst.Driver.Driver.StopTask(context.Background(), &drivers.StopTaskRequest{
		TaskId: t.ID(), Timeout: durationpb.New(timeout), Signal: signal,
	})
	if err != nil {
		return refusal("stop_task", err)
	}
	return nil
}

// Destroy calls DestroyTask (force as Nomad always sends) and stops logmon.
func (h *Host) Destroy(t *Task, force bool) error {
	_, err := h.Inst.Driver.Driver.DestroyTask(context.Background(), &drivers.DestroyTaskRequest{TaskId: t.ID(), Force: force})
	t.StopLogs(500 * time.Millisecond)
	if err != nil {
		return refusal("destroy_task", err)
	}
	// alloc postrun: the group's network and the reserved cores go after its (only) task
	h.cores.release(t.coreKey)
	if err := t.ReleaseNetwork(); err != nil {
		return fail("network_teardown", err)
	}
	return nil
}

// Signal calls SignalTask.
func (h *Host) Signal(taskID, sig string) error {
	_, err := h.Inst.Driver.Driver.SignalTask(context.Background(), &drivers.SignalTaskRequest{TaskId: taskID, Signal: sig})
	if err != nil {
		return refusal("signal_task", err)
	}
	return nil
}

// Inspect calls InspectTask and checks the fields the client dereferences.
func (h *Host) Inspect(taskID string) (*drivers.InspectTaskResponse, error) {
	resp, err := h.Inst.Driver.Driver.InspectTask(context.Background(), &drivers.InspectTaskRequest{TaskId: taskID})
	if err != nil {
		return nil, refusal("inspect_task", err)
	}
	ts := resp.GetTask()
	if ts == nil || ts.GetStartedAt() == nil || ts.GetCompletedAt() == nil || ts.GetResult() == nil {
		return resp, fail("inspect_task", errors.New("task, task.started_at, task.completed_at and task.result must all be set"))
	}
	return resp, nil
}

// Exec calls ExecTask.
func (h *Host) Exec(taskID string, cmd []string, timeout time.Duration) (*drivers.ExecTaskResponse, error) {
	req := &drivers.ExecTaskRequest{TaskId: taskID, Command: cmd}
	if timeout > 0 {
		req.Timeout = durationpb.New(timeout)
	}
	resp, err := h.Inst.Driver.Driver.ExecTask(context.Background(), req)
	if err != nil {
		return nil, refusal("exec_task", err)
	}
	if resp.GetResult() == nil {
		return resp, fail("exec_task", errors.New("response has no result"))
	}
	return resp, nil
}

// StreamResult is what an ExecTaskStreaming session produced.
type StreamResult struct {
	Stdout, Stderr             []byte
	StdoutClosed, StderrClosed bool
	Result                     *drivers.ExitResult
	Messages                   int
}

// ExecStream runs an ExecTaskStreaming session like `nomad alloc exec`: setup,
// optional terminal size, stdin chunks, optional stdin close; then reads until
// the exited message. It never half-closes its send side (the client doesn't).
func (h *Host) ExecStream(taskID string, cmd []string, tty bool, stdin []byte, closeStdin bool, timeout time.Duration) (*StreamResult, error) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if timeout > 0 {
		var cancelT context.CancelFunc
		ctx, cancelT = context.WithTimeout(ctx, timeout)
		defer cancelT()
	}
	st, err := h.Inst.Driver.Driver.ExecTaskStreaming(ctx)
	if err != nil {
		return nil, refusal("exec_task_streaming", err)
	}
	send := func(m *drivers.ExecTaskStreamingRequest) error { return st.Send(m) }
	if err := send(&drivers.ExecTaskStreamingRequest{Setup: &drivers.ExecTaskStreamingRequest_Setup{TaskId: taskID, Command: cmd, Tty: tty}}); err != nil {
		return nil, fail("exec_task_streaming", err)
	}
	if tty {
		_ = send(&drivers.ExecTaskStreamingRequest{TtySize: &drivers.ExecTaskStreamingRequest_TerminalSize{Height: 24, Width: 80}})
	}
	go func() {
		for len(stdin) > 0 {
			n := min(len(stdin), 1024)
			if send(&drivers.ExecTaskStreamingRequest{Stdin: &drivers.ExecTaskStreamingIOOperation{Data: stdin[:n]}}) != nil {
				return
			}
			stdin = stdin[n:]
		}
		if closeStdin {
			_ = send(&drivers.ExecTaskStreamingRequest{Stdin: &drivers.ExecTaskStreamingIOOperation{Close: true}})
		}
	}()
	res := &StreamResult{}
	for {
		msg, err := st.Recv()
		if err != nil {
			return res, refusal("exec_task_streaming", err)
		}
		res.Messages++
		if o := msg.GetStdout(); o != nil {
			res.Stdout = append(res.Stdout, o.GetData()...)
			res.StdoutClosed = res.StdoutClosed || o.GetClose()
		}
		if e := msg.GetStderr(); e != nil {
			res.Stderr = append(res.Stderr, e.GetData()...)
			res.StderrClosed = res.StderrClosed || e.GetClose()
		}
		if msg.GetExited() {
			if msg.GetResult() == nil {
				return res, fail("exec_task_streaming", errors.New("exited message has no result"))
			}
			res.Result = msg.GetResult()
			return res, nil
		}
	}
}

// Stats reads count samples from TaskStats at interval, then cancels.
func (h *Host) Stats(taskID string, interval time.Duration, count int) ([]*drivers.TaskStats, error) {
	ctx, cancel := context.WithTimeout(context.Background(), interval*time.Duration(count+5)+10*time.Second)
	defer cancel()
	st, err := h.Inst.Driver.Driver.TaskStats(ctx, &drivers.TaskStatsRequest{TaskId: taskID, CollectionInterval: durationpb.New(interval)})
	if err != nil {
		return nil, refusal("task_stats", err)
	}
	var out []*drivers.TaskStats
	for len(out) < count {
		msg, err := st.Recv()
		if err != nil {
			return out, refusal("task_stats", err)
		}
		s := msg.GetStats()
		if s == nil || s.GetTimestamp() == nil || s.GetAggResourceUsage() == nil {
			return out, fail("task_stats", errors.New("stats, stats.timestamp and stats.agg_resource_usage must be set"))
		}
		out = append(out, s)
	}
	return out, nil
}

// Recover calls RecoverTask with handle. clearConfig empties
// handle.config.msgpack_driver_config as the client's state DB does across an
// agent restart. The returned Task has logmon running again: prev's copiers
// (same task, earlier plugin instance) are taken over, else new ones start.
func (h *Host) Recover(handle *drivers.TaskHandle, job *nomadfile.Task, prev *Task, clearConfig bool) (*Task, error) {
	hd := proto.Clone(handle).(*drivers.TaskHandle)
	if hd.GetConfig() == nil {
		return nil, fail("recover_task", errors.New("handle has no config"))
	}
	if clearConfig {
		hd.Config.MsgpackDriverConfig = nil
	}
	t := &Task{Job: job, Paths: allocdir.For(hd.Config.GetAllocDir(), hd.Config.GetName()), Config: hd.Config, Handle: hd}
	if prev != nil {
		prev.logMu.Lock()
		t.logmon, prev.logmon = prev.logmon, nil
		prev.logMu.Unlock()
		t.coreKey = prev.coreKey
	}
	if t.coreKey == "" && hd.Config.GetResources().GetLinuxResources().GetCpusetCpus() != "" {
		// a client restarted from its state DB: the task keeps the cores it had
		if cores, err := parseCPUList(hd.Config.Resources.LinuxResources.CpusetCpus); err == nil {
			t.coreKey = hd.Config.GetId()
			h.cores.claim(t.coreKey, cores)
		}
	}
	if err := t.StartLogs(); err != nil {
		return nil, fail("logmon", err)
	}
	if _, err := h.Inst.Driver.Driver.RecoverTask(context.Background(), &drivers.RecoverTaskRequest{Handle: hd}); err != nil {
		return t, refusal("recover_task", err)
	}
	return t, nil
}

// FetchCapabilities calls Capabilities (for hosts set up with LaunchBase only).
func (h *Host) FetchCapabilities() error {
	caps, err := h.Inst.Driver.Driver.Capabilities(context.Background(), &drivers.CapabilitiesRequest{})
	if err != nil {
		return fail("capabilities", err)
	}
	if caps.GetCapabilities() == nil {
		return fail("capabilities", errors.New("response has no capabilities"))
	}
	h.Caps = caps.GetCapabilities()
	return nil
}

// DecodeJob decodes the config block of task in jobFile with the plugin's
// TaskConfigSchema and the variables the task would see, without starting it.
func (h *Host) DecodeJob(jobFile, task string) (confdec.Result, error) {
	job, err := nomadfile.ParseJob(jobFile, task)
	if err != nil {
		return confdec.Result{}, fail("job_file", err)
	}
	allocID := NewUUID()
	_, ctx, err := h.buildEnv(job, allocdir.For("/nonexistent/"+allocID, job.Name), allocID, nil)
	if err != nil {
		return confdec.Result{}, &StageError{Stage: "validate", Err: err, Refused: true}
	}
	r, err := confdec.Decode(job.Config, h.TaskSpec, ctx)
	if err != nil {
		return r, &StageError{Stage: "validate", Err: err, Refused: true}
	}
	return r, nil
}
