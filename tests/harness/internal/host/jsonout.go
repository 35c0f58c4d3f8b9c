package host

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"strconv"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/nomad-ctr/nomad_ctr/tests/harness/pb/drivers"
	"github.com/nomad-ctr/nomad_ctr/tests/harness/pb/structs"
)

var pj = protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: true}

// ProtoJSON renders m with proto field names and every field present.
func ProtoJSON(m proto.Message) json.RawMessage {
	if m == nil {
		return json.RawMessage("null")
	}
	b, err := pj.Marshal(m)
	if err != nil {
		return json.RawMessage("null")
	}
	return b
}

// ExitJSON is an ExitResult as JSON.
func ExitJSON(r *drivers.ExitResult) map[string]any {
	if r == nil {
		return nil
	}
	return map[string]any{"exit_code": r.GetExitCode(), "signal": r.GetSignal(), "oom_killed": r.GetOomKilled()}
}

// WaitJSON is a WaitTask result as JSON.
func WaitJSON(w *WaitResult) map[string]any {
	if w == nil {
		return nil
	}
	m := map[string]any{"err": w.Err}
	if w.Result != nil {
		for k, v := range ExitJSON(w.Result) {
			m[k] = v
		}
	}
	return m
}

// EventJSON is a DriverTaskEvent as JSON.
func EventJSON(e *drivers.DriverTaskEvent) map[string]any {
	ts := ""
	if e.GetTimestamp() != nil {
		ts = e.GetTimestamp().AsTime().Format(time.RFC3339Nano)
	}
	ann := e.GetAnnotations()
	if ann == nil {
		ann = map[string]string{}
	}
	return map[string]any{
		"task_id": e.GetTaskId(), "alloc_id": e.GetAllocId(), "task_name": e.GetTaskName(),
		"timestamp": ts, "message": e.GetMessage(), "annotations": ann,
	}
}

// EventsJSON renders events, optionally only those the client would route to
// task t: it routes by alloc_id + task_name, not by task_id. Events lacking a
// timestamp are flagged ("timestamp" empty).
func EventsJSON(evs []*drivers.DriverTaskEvent, t *Task) []map[string]any {
	out := []map[string]any{}
	for _, e := range evs {
		if t == nil || (e.GetAllocId() == t.Config.GetAllocId() && e.GetTaskName() == t.Config.GetName()) {
			out = append(out, EventJSON(e))
		}
	}
	return out
}

// ErrorJSON describes err; StageError details are kept.
func ErrorJSON(err error) map[string]any {
	if err == nil {
		return nil
	}
	m := map[string]any{"error": err.Error()}
	var se *StageError
	if errors.As(err, &se) {
		m["stage"] = se.Stage
		m["message"] = se.Err.Error()
		m["refused"] = se.Refused
		if se.Code != "" {
			m["grpc_code"] = se.Code
		}
		if se.Recoverable != nil {
			m["recoverable"] = *se.Recoverable
		}
	}
	return m
}

// InfoJSON summarises the launched plugin.
func (h *Host) InfoJSON() map[string]any {
	m := map[string]any{
		"name": h.Info.GetName(), "version": h.Info.GetPluginVersion(),
		"api_versions": h.Info.GetPluginApiVersions(), "type": h.Info.GetType().String(),
		"pid": h.Inst.Pid,
	}
	if h.Caps != nil {
		m["capabilities"] = ProtoJSON(h.Caps)
	}
	if first, latest, n, err := h.Fingerprints(); first != nil {
		m["fingerprint"] = FingerprintJSON(latest)
		m["fingerprint_first"] = FingerprintJSON(first)
		m["fingerprints_received"] = n
		if err != nil {
			m["fingerprint_stream_error"] = err.Error()
		}
	}
	return m
}

// FingerprintJSON flattens attributes as the client does (value + unit) and
// keeps the raw protojson form too.
func FingerprintJSON(f *drivers.FingerprintResponse) map[string]any {
	flat := map[string]string{}
	raw := map[string]any{}
	for k, a := range f.GetAttributes() {
		raw[k] = ProtoJSON(a)
		var v string
		switch x := a.GetValue().(type) {
		case *structs.Attribute_FloatVal:
			v = strconv.FormatFloat(x.FloatVal, 'g', -1, 64)
		case *structs.Attribute_IntVal:
			v = strconv.FormatInt(x.IntVal, 10)
		case *structs.Attribute_StringVal:
			v = x.StringVal
		case *structs.Attribute_BoolVal:
			v = strconv.FormatBool(x.BoolVal)
		}
		flat[k] = v + a.GetUnit()
	}
	return map[string]any{
		"health": f.GetHealth().String(), "health_description": f.GetHealthDescription(),
		"err": f.GetErr(), "attributes": flat, "attributes_raw": raw,
	}
}

// TaskJSON describes a started or recovered task.
func TaskJSON(t *Task) map[string]any {
	m := map[string]any{
		"task_id": t.ID(), "alloc_id": t.Config.GetAllocId(), "alloc_dir": t.Paths.AllocDir,
		"task_name":   t.Config.GetName(),
		"stdout_file": t.Paths.StdoutFile, "stderr_file": t.Paths.StderrFile,
		"stdout_fifo": t.Paths.StdoutFIFO, "stderr_fifo": t.Paths.StderrFIFO,
		"handle": ProtoJSON(t.Handle),
	}
	if t.Network != nil {
		m["network_override"] = ProtoJSON(t.Network)
	}
	if t.GroupNet != nil {
		m["group_network"] = t.GroupNet.JSON()
	}
	if cs := t.Config.GetResources().GetLinuxResources().GetCpusetCpus(); cs != "" {
		m["cpuset_cpus"] = cs // the cores reserved for resources.cores
	}
	if t.Decoded.Msgpack != nil {
		m["msgpack_b64"] = base64.StdEncoding.EncodeToString(t.Decoded.Msgpack)
		if v, err := t.Decoded.JSONValue(); err == nil {
			m["config"] = v
		}
	}
	return m
}

// ParseHandle reads a TaskHandle from JSON (the "handle" value of TaskJSON).
func ParseHandle(b []byte) (*drivers.TaskHandle, error) {
	hd := &drivers.TaskHandle{}
	if err := protojson.Unmarshal(b, hd); err != nil {
		return nil, err
	}
	return hd, nil
}

// UsageJSON renders a TaskResourceUsage with plain JSON numbers (protojson
// would print the uint64 fields as strings).
func UsageJSON(u *drivers.TaskResourceUsage) map[string]any {
	if u == nil {
		return nil
	}
	out := map[string]any{}
	if c := u.GetCpu(); c != nil {
		fields := []string{}
		for _, f := range c.GetMeasuredFields() {
			fields = append(fields, f.String())
		}
		out["cpu"] = map[string]any{
			"system_mode": c.GetSystemMode(), "user_mode": c.GetUserMode(), "total_ticks": c.GetTotalTicks(),
			"throttled_periods": c.GetThrottledPeriods(), "throttled_time": c.GetThrottledTime(),
			"percent": c.GetPercent(), "measured_fields": fields,
		}
	}
	if m := u.GetMemory(); m != nil {
		fields := []string{}
		for _, f := range m.GetMeasuredFields() {
			fields = append(fields, f.String())
		}
		out["memory"] = map[string]any{
			"rss": m.GetRss(), "cache": m.GetCache(), "max_usage": m.GetMaxUsage(),
			"kernel_usage": m.GetKernelUsage(), "kernel_max_usage": m.GetKernelMaxUsage(),
			"usage": m.GetUsage(), "swap": m.GetSwap(), "measured_fields": fields,
		}
	}
	return out
}

// StatsJSON renders one TaskStats sample.
func StatsJSON(s *drivers.TaskStats) map[string]any {
	ts := ""
	if s.GetTimestamp() != nil {
		ts = s.GetTimestamp().AsTime().Format(time.RFC3339Nano)
	}
	pids := map[string]any{}
	for pid, u := range s.GetResourceUsageByPid() {
		pids[pid] = UsageJSON(u)
	}
	return map[string]any{"id": s.GetId(), "timestamp": ts, "agg": UsageJSON(s.GetAggResourceUsage()), "by_pid": pids}
}
