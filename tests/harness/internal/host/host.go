// Package host plays the Nomad client's part against one driver plugin: the
// launch and setup sequence of fact sheet §11 (PluginInfo checks, SetConfig,
// Init, Fingerprint, TaskEvents, TaskConfigSchema, Capabilities) and the task
// calls built on it.
package host

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/hcl/v2/hcldec"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/nomad-ctr/nomad_ctr/tests/harness/internal/confdec"
	"github.com/nomad-ctr/nomad_ctr/tests/harness/internal/nomadfile"
	"github.com/nomad-ctr/nomad_ctr/tests/harness/internal/pluginclient"
	"github.com/nomad-ctr/nomad_ctr/tests/harness/internal/specconv"
	"github.com/nomad-ctr/nomad_ctr/tests/harness/pb/base"
	"github.com/nomad-ctr/nomad_ctr/tests/harness/pb/drivers"
	"github.com/nomad-ctr/nomad_ctr/tests/harness/pb/hclspec"
)

// APIVersion is the plugin API version Nomad speaks to drivers.
const APIVersion = "v0.1.0"

// Options configure a Host.
type Options struct {
	PluginPath string
	PluginArgs []string
	// Agent is the parsed agent config (nil: no agent file, empty plugin config).
	Agent *nomadfile.Agent
	// PluginName is the binary name looked up in the agent's plugin blocks.
	PluginName         string
	Logger             hclog.Logger
	FingerprintTimeout time.Duration
	// AllowUnhealthy accepts a first fingerprint that is not HEALTHY.
	AllowUnhealthy bool
	// Validation mimics the agent's validation launch: SetConfig twice and
	// without nomad_config (the main instance sends it once, with it).
	Validation bool
}

// Host is one launched plugin instance and what the setup learned from it.
type Host struct {
	opts Options
	Inst *pluginclient.Instance

	Info          *base.PluginInfoResponse
	APIVersion    string // as the plugin spelled it
	ConfigSpec    *hclspec.Spec
	AgentConfig   confdec.Result
	TaskSpecProto *hclspec.Spec
	TaskSpec      hcldec.Spec
	Caps          *drivers.DriverCapabilities

	cancelStreams context.CancelFunc

	fpMu     sync.Mutex
	fpFirst  *drivers.FingerprintResponse
	fpLatest *drivers.FingerprintResponse
	fpCount  int
	fpErr    error

	evMu   sync.Mutex
	events []*drivers.DriverTaskEvent

	cores coreBook // cores reserved by this host's tasks (resources.cores)
}

// StageError says which step failed. Driver refusals (Refused) are legitimate
// protocol outcomes, everything else is a protocol or harness failure.
type StageError struct {
	Stage       string
	Err         error
	Refused     bool
	Code        string
	Recoverable *bool
}

func (e *StageError) Error() string { return e.Stage + ": " + e.Err.Error() }
func (e *StageError) Unwrap() error { return e.Err }

func fail(stage string, err error) error { return &StageError{Stage: stage, Err: err} }

// refusal wraps a gRPC error of a driver call that may legitimately fail.
func refusal(stage string, err error) error {
	se := &StageError{Stage: stage, Err: err, Refused: true, Code: status.Code(err).String()}
	if st, ok := status.FromError(err); ok {
		for _, d := range st.Details() {
			if re, ok := d.(interface{ GetRecoverable() bool }); ok {
				r := re.GetRecoverable()
				se.Recoverable = &r
			}
			break // Nomad inspects only the first detail
		}
		se.Err = errors.New(st.Message())
	}
	return se
}

var versionRe = regexp.MustCompile(`^v?(\d+)\.(\d+)\.(\d+)([-+].*)?$`)

func sameVersion(a, b string) bool {
	ma, mb := versionRe.FindStringSubmatch(a), versionRe.FindStringSubmatch(b)
	return ma != nil && mb != nil && ma[1] == mb[1] && ma[2] == mb[2] && ma[3] == mb[3] && ma[4] == mb[4]
}

// LaunchBase starts the plugin and runs the base-plugin part: PluginInfo
// checks, ConfigSchema, agent config decoding and SetConfig.
func LaunchBase(opts Options) (*Host, error) {
	if opts.Logger == nil {
		opts.Logger = hclog.NewNullLogger()
	}
	if opts.FingerprintTimeout == 0 {
		opts.FingerprintTimeout = 30 * time.Second
	}
	var args []string
	args = append(args, opts.PluginArgs...)
	var pluginCfg *nomadfile.Plugin
	if opts.Agent != nil {
		pluginCfg = opts.Agent.Plugins[opts.PluginName]
		if pluginCfg != nil && len(opts.PluginArgs) == 0 {
			args = pluginCfg.Args
		}
	}
	inst, err := pluginclient.Launch(opts.PluginPath, args, opts.Logger)
	if err != nil {
		return nil, fail("launch", err)
	}
	h := &Host{opts: opts, Inst: inst}
	if err := h.setupBase(pluginCfg); err != nil {
		h.Inst.Client.Kill()
		return nil, err
	}
	return h, nil
}

func (h *Host) setupBase(pluginCfg *nomadfile.Plugin) error {
	ctx := context.Background()
	b := h.Inst.Driver.Base
	info, err := b.PluginInfo(ctx, &base.PluginInfoRequest{})
	if err != nil {
		return fail("plugin_info", err)
	}
	h.Info = info
	if info.GetType() != base.PluginType_DRIVER {
		return fail("plugin_info", fmt.Errorf("type is %s, want DRIVER", info.GetType()))
	}
	if !versionRe.MatchString(info.GetPluginVersion()) {
		return fail("plugin_info", fmt.Errorf("plugin_version %q is not a version", info.GetPluginVersion()))
	}
	if info.GetName() == "" {
		return fail("plugin_info", errors.New("name is empty"))
	}
	for _, v := range info.GetPluginApiVersions() {
		if sameVersion(v, APIVersion) {
			h.APIVersion = v
			break
		}
	}
	if h.APIVersion == "" {
		return fail("plugin_info", fmt.Errorf("plugin_api_versions %q do not include %s", info.GetPluginApiVersions(), APIVersion))
	}

	cs, err := b.ConfigSchema(ctx, &base.ConfigSchemaRequest{})
	if err != nil {
		return fail("config_schema", err)
	}
	h.ConfigSpec = cs.GetSpec()
	var msgpackCfg []byte
	if h.ConfigSpec == nil {
		if pluginCfg != nil && pluginCfg.Config != nil {
			return fail("config_schema", errors.New("plugin has no config schema but the agent config has a config block: configuration not allowed"))
		}
	} else {
		spec, err := specconv.Convert(h.ConfigSpec)
		if err != nil {
			return fail("config_schema", err)
		}
		var body *hclsyntax.Body
		if pluginCfg != nil {
			body = pluginCfg.Config
		}
		h.AgentConfig, err = confdec.Decode(body, spec, nil)
		if err != nil {
			return &StageError{Stage: "agent_config", Err: err, Refused: true}
		}
		msgpackCfg = h.AgentConfig.Msgpack
	}
	req := &base.SetConfigRequest{
		MsgpackConfig: msgpackCfg,
		NomadConfig: &base.NomadConfig{Driver: &base.NomadDriverConfig{
			ClientMinPort: 14000, ClientMaxPort: 14512,
		}},
		PluginApiVersion: h.APIVersion,
	}
	calls := 1
	if h.opts.Validation {
		req.NomadConfig = nil
		calls = 2
	}
	for i := 0; i < calls; i++ {
		if _, err := b.SetConfig(ctx, req); err != nil {
			return refusal("set_config", err)
		}
	}
	return nil
}

// Launch runs LaunchBase and the rest of the main-instance setup.
func Launch(opts Options) (*Host, error) {
	h, err := LaunchBase(opts)
	if err != nil {
		return nil, err
	}
	if err := h.setupDriver(); err != nil {
		h.Kill()
		return nil, err
	}
	return h, nil
}

func (h *Host) setupDriver() error {
	d := h.Inst.Driver.Driver
	if _, err := d.Init(context.Background(), &drivers.InitRequest{}); err != nil && status.Code(err) != codes.Unimplemented {
		return fail("init", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h.cancelStreams = cancel

	first := make(chan struct{})
	fp, err := d.Fingerprint(ctx, &drivers.FingerprintRequest{})
	if err != nil {
		return fail("fingerprint", err)
	}
	go func() {
		once := sync.OnceFunc(func() { close(first) })
		defer once()
		for {
			msg, err := fp.Recv()
			h.fpMu.Lock()
			if err != nil {
				if ctx.Err() == nil {
					h.fpErr = err
				}
				h.fpMu.Unlock()
				return
			}
			if h.fpFirst == nil {
				h.fpFirst = msg
			}
			h.fpLatest = msg
			h.fpCount++
			h.fpMu.Unlock()
			once()
		}
	}()
	ev, err := d.TaskEvents(ctx, &drivers.TaskEventsRequest{})
	if err != nil {
		return fail("task_events", err)
	}
	go func() {
		for {
			msg, err := ev.Recv()
			if err != nil {
				return
			}
			h.evMu.Lock()
			h.events = append(h.events, msg)
			h.evMu.Unlock()
		}
	}()

	select {
	case <-first:
	case <-time.After(h.opts.FingerprintTimeout):
		return fail("fingerprint", fmt.Errorf("no first fingerprint within %s", h.opts.FingerprintTimeout))
	}
	h.fpMu.Lock()
	msg, ferr := h.fpFirst, h.fpErr
	h.fpMu.Unlock()
	if msg == nil {
		return fail("fingerprint", fmt.Errorf("stream ended before the first message: %v", ferr))
	}
	if msg.GetErr() != "" {
		return fail("fingerprint", fmt.Errorf("err: %s", msg.GetErr()))
	}
	if !h.opts.AllowUnhealthy {
		if msg.GetHealth() != drivers.FingerprintResponse_HEALTHY {
			return fail("fingerprint", fmt.Errorf("first fingerprint is %s: %s", msg.GetHealth(), msg.GetHealthDescription()))
		}
		key := "driver." + h.Info.GetName()
		if _, ok := msg.GetAttributes()[key]; !ok {
			return fail("fingerprint", fmt.Errorf("first fingerprint lacks attribute %s", key))
		}
	}

	ts, err := d.TaskConfigSchema(context.Background(), &drivers.TaskConfigSchemaRequest{})
	if err != nil {
		return fail("task_config_schema", err)
	}
	h.TaskSpecProto = ts.GetSpec()
	if h.TaskSpec, err = specconv.Convert(h.TaskSpecProto); err != nil {
		return fail("task_config_schema", err)
	}
	caps, err := d.Capabilities(context.Background(), &drivers.CapabilitiesRequest{})
	if err != nil {
		return fail("capabilities", err)
	}
	if caps.GetCapabilities() == nil {
		return fail("capabilities", errors.New("response has no capabilities"))
	}
	h.Caps = caps.GetCapabilities()
	return nil
}

// TaskSchema fetches and converts TaskConfigSchema (for hosts set up with
// LaunchBase only).
func (h *Host) TaskSchema() error {
	ts, err := h.Inst.Driver.Driver.TaskConfigSchema(context.Background(), &drivers.TaskConfigSchemaRequest{})
	if err != nil {
		return fail("task_config_schema", err)
	}
	h.TaskSpecProto = ts.GetSpec()
	if h.TaskSpec, err = specconv.Convert(h.TaskSpecProto); err != nil {
		return fail("task_config_schema", err)
	}
	return nil
}

// Fingerprints returns the first and latest fingerprint and how many arrived.
func (h *Host) Fingerprints() (first, latest *drivers.FingerprintResponse, n int, err error) {
	h.fpMu.Lock()
	defer h.fpMu.Unlock()
	return h.fpFirst, h.fpLatest, h.fpCount, h.fpErr
}

// Events returns the task events received so far.
func (h *Host) Events() []*drivers.DriverTaskEvent {
	h.evMu.Lock()
	defer h.evMu.Unlock()
	return append([]*drivers.DriverTaskEvent(nil), h.events...)
}

// Kill stops the plugin as the agent does on shutdown: Driver.Shutdown with a
// 2 s deadline, then go-plugin's kill (controller shutdown, 2 s, SIGKILL).
func (h *Host) Kill() {
	if h.cancelStreams != nil {
		h.cancelStreams()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	_, _ = h.Inst.Driver.Driver.Shutdown(ctx, &drivers.ShutdownRequest{})
	cancel()
	h.Inst.Client.Kill()
}

// Crash sends sig (e.g. SIGKILL) to the plugin process and waits until
// go-plugin has seen it exit.
func (h *Host) Crash(sig syscall.Signal) error {
	if h.Inst.Pid <= 0 {
		return errors.New("plugin pid unknown")
	}
	if err := syscall.Kill(h.Inst.Pid, sig); err != nil {
		return fmt.Errorf("kill %d: %w", h.Inst.Pid, err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !h.Inst.Client.Exited() {
		if time.Now().After(deadline) {
			return fmt.Errorf("plugin %d did not exit after %s", h.Inst.Pid, sig)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if h.cancelStreams != nil {
		h.cancelStreams()
	}
	h.Inst.Client.Kill() // releases go-plugin's resources; the process is gone
	return nil
}

// Exited reports whether the plugin process has exited.
func (h *Host) Exited() bool { return h.Inst.Client.Exited() }
