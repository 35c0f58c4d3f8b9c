package host

// A tiny driver plugin served through go-plugin by this very test binary (re-
// executed with HARNESS_FAKE_PLUGIN=1). It exists only to exercise the harness's
// own host side fast and without containerd: its "tasks" are goroutines that
// write lines into the stdout FIFO and exit with the configured code.

import (
	"context"
	"fmt"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-plugin"
	"github.com/zclconf/go-cty/cty"
	ctymsgpack "github.com/zclconf/go-cty/cty/msgpack"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/nomad-ctr/nomad_ctr/tests/harness/internal/pluginclient"
	"github.com/nomad-ctr/nomad_ctr/tests/harness/pb/base"
	"github.com/nomad-ctr/nomad_ctr/tests/harness/pb/drivers"
	"github.com/nomad-ctr/nomad_ctr/tests/harness/pb/hclspec"
	"github.com/nomad-ctr/nomad_ctr/tests/harness/pb/structs"
)

func fakeAttr(name, ty string, req bool) *hclspec.Spec {
	return &hclspec.Spec{Block: &hclspec.Spec_Attr{Attr: &hclspec.Attr{Name: name, Type: ty, Required: req}}}
}

func fakeDefault(p *hclspec.Spec, lit string) *hclspec.Spec {
	return &hclspec.Spec{Block: &hclspec.Spec_Default{Default: &hclspec.Default{
		Primary: p, Default: &hclspec.Spec{Block: &hclspec.Spec_Literal{Literal: &hclspec.Literal{Value: lit}}},
	}}}
}

var fakeTaskSpec = &hclspec.Spec{Block: &hclspec.Spec_Object{Object: &hclspec.Object{Attributes: map[string]*hclspec.Spec{
	"image":     fakeAttr("image", "string", true),
	"exit_code": fakeDefault(fakeAttr("exit_code", "number", false), "0"),
	"lines":     fakeDefault(fakeAttr("lines", "list(string)", false), "[]"),
	"run_for":   fakeDefault(fakeAttr("run_for", "string", false), `"0s"`),
}}}}

var fakeTaskType = cty.Object(map[string]cty.Type{
	"image": cty.String, "exit_code": cty.Number, "lines": cty.List(cty.String), "run_for": cty.String,
})

type fakeTask struct {
	done   chan struct{}
	result *drivers.ExitResult
	stop   chan int32
}

type fakeDriver struct {
	drivers.UnimplementedDriverServer
	base.UnimplementedBasePluginServer
	mu    sync.Mutex
	tasks map[string]*fakeTask
}

func (f *fakeDriver) PluginInfo(context.Context, *base.PluginInfoRequest) (*base.PluginInfoResponse, error) {
	return &base.PluginInfoResponse{Type: base.PluginType_DRIVER, PluginApiVersions: []string{"0.1.0"}, PluginVersion: "0.0.1", Name: "fake"}, nil
}
func (f *fakeDriver) ConfigSchema(context.Context, *base.ConfigSchemaRequest) (*base.ConfigSchemaResponse, error) {
	return &base.ConfigSchemaResponse{}, nil
}
func (f *fakeDriver) SetConfig(_ context.Context, r *base.SetConfigRequest) (*base.SetConfigResponse, error) {
	if r.GetPluginApiVersion() != "0.1.0" {
		return nil, status.Errorf(codes.InvalidArgument, "api version %q", r.GetPluginApiVersion())
	}
	return &base.SetConfigResponse{}, nil
}
func (f *fakeDriver) TaskConfigSchema(context.Context, *drivers.TaskConfigSchemaRequest) (*drivers.TaskConfigSchemaResponse, error) {
	return &drivers.TaskConfigSchemaResponse{Spec: fakeTaskSpec}, nil
}
func (f *fakeDriver) Capabilities(context.Context, *drivers.CapabilitiesRequest) (*drivers.CapabilitiesResponse, error) {
	return &drivers.CapabilitiesResponse{Capabilities: &drivers.DriverCapabilities{SendSignals: true, FsIsolation: drivers.DriverCapabilities_IMAGE}}, nil
}
func (f *fakeDriver) Fingerprint(_ *drivers.FingerprintRequest, s grpc.ServerStreamingServer[drivers.FingerprintResponse]) error {
	_ = s.Send(&drivers.FingerprintResponse{Health: drivers.FingerprintResponse_HEALTHY, HealthDescription: "Healthy",
		Attributes: map[string]*structs.Attribute{"driver.fake": {Value: &structs.Attribute_BoolVal{BoolVal: true}}}})
	<-s.Context().Done()
	return nil
}
func (f *fakeDriver) TaskEvents(_ *drivers.TaskEventsRequest, s grpc.ServerStreamingServer[drivers.DriverTaskEvent]) error {
	<-s.Context().Done()
	return nil
}

func (f *fakeDriver) StartTask(_ context.Context, r *drivers.StartTaskRequest) (*drivers.StartTaskResponse, error) {
	v, err := ctymsgpack.Unmarshal(r.GetTask().GetMsgpackDriverConfig(), fakeTaskType)
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "config: %v", err)
	}
	if v.GetAttr("image").AsString() == "missing" {
		return nil, status.Error(codes.FailedPrecondition, "image missing not found")
	}
	code, _ := v.GetAttr("exit_code").AsBigFloat().Int64()
	runFor, _ := time.ParseDuration(v.GetAttr("run_for").AsString())
	var lines []string
	for _, l := range v.GetAttr("lines").AsValueSlice() {
		lines = append(lines, l.AsString())
	}
	t := &fakeTask{done: make(chan struct{}), stop: make(chan int32, 1)}
	f.mu.Lock()
	f.tasks[r.GetTask().GetId()] = t
	f.mu.Unlock()
	go func() {
		defer close(t.done)
		if w, err := os.OpenFile(r.GetTask().GetStdoutPath(), os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
			for _, l := range lines {
				fmt.Fprintln(w, l)
			}
			w.Close()
		}
		select {
		case <-time.After(runFor):
			t.result = &drivers.ExitResult{ExitCode: int32(code)}
		case sig := <-t.stop:
			t.result = &drivers.ExitResult{ExitCode: 128 + sig, Signal: sig}
		}
	}()
	return &drivers.StartTaskResponse{Handle: &drivers.TaskHandle{Version: 1, Config: r.GetTask(), State: drivers.TaskState_RUNNING}}, nil
}

func (f *fakeDriver) task(id string) (*fakeTask, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	t, ok := f.tasks[id]
	if !ok {
		return nil, status.Error(codes.NotFound, "task not found for given id")
	}
	return t, nil
}

func (f *fakeDriver) WaitTask(ctx context.Context, r *drivers.WaitTaskRequest) (*drivers.WaitTaskResponse, error) {
	t, err := f.task(r.GetTaskId())
	if err != nil {
		return nil, err
	}
	select {
	case <-t.done:
		return &drivers.WaitTaskResponse{Result: t.result}, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
func (f *fakeDriver) StopTask(_ context.Context, r *drivers.StopTaskRequest) (*drivers.StopTaskResponse, error) {
	t, err := f.task(r.GetTaskId())
	if err != nil {
		return nil, err
	}
	sig := int32(15)
	if r.GetSignal() == "SIGINT" {
		sig = 2
	}
	select {
	case t.stop <- sig:
	default:
	}
	<-t.done
	return &drivers.StopTaskResponse{}, nil
}
func (f *fakeDriver) DestroyTask(_ context.Context, r *drivers.DestroyTaskRequest) (*drivers.DestroyTaskResponse, error) {
	f.mu.Lock()
	delete(f.tasks, r.GetTaskId())
	f.mu.Unlock()
	return &drivers.DestroyTaskResponse{}, nil
}
func (f *fakeDriver) InspectTask(_ context.Context, r *drivers.InspectTaskRequest) (*drivers.InspectTaskResponse, error) {
	t, err := f.task(r.GetTaskId())
	if err != nil {
		return nil, err
	}
	res := &drivers.ExitResult{}
	select {
	case <-t.done:
		res = t.result
	default:
	}
	return &drivers.InspectTaskResponse{Task: &drivers.TaskStatus{Id: r.GetTaskId(), StartedAt: timestamppb.Now(),
		CompletedAt: timestamppb.Now(), Result: res}}, nil
}

type fakeServe struct{ plugin.NetRPCUnsupportedPlugin }

func (fakeServe) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	f := &fakeDriver{tasks: map[string]*fakeTask{}}
	base.RegisterBasePluginServer(s, f)
	drivers.RegisterDriverServer(s, f)
	return nil
}
func (fakeServe) GRPCClient(context.Context, *plugin.GRPCBroker, *grpc.ClientConn) (interface{}, error) {
	return nil, fmt.Errorf("server only")
}

func serveFake() {
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: pluginclient.Handshake,
		Plugins:         map[string]plugin.Plugin{"driver": fakeServe{}},
		GRPCServer:      plugin.DefaultGRPCServer,
	})
}
