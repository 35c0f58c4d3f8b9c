package main

import (
	"encoding/base64"
	"flag"

	"github.com/nomad-ctr/nomad_ctr/tests/harness/internal/confdec"
	"github.com/nomad-ctr/nomad_ctr/tests/harness/internal/host"
)

func decodedJSON(out map[string]any, r confdec.Result) {
	out["msgpack_b64"] = base64.StdEncoding.EncodeToString(r.Msgpack)
	if v, err := r.JSONValue(); err == nil {
		out["value"] = v
	}
	if t, err := r.JSONType(); err == nil {
		out["type"] = t
	}
}

// cmdSchemaDecode: PluginInfo, ConfigSchema, SetConfig, TaskConfigSchema,
// Capabilities, then decode the task's config block as the client would.
func cmdSchemaDecode(args []string) {
	fs := flag.NewFlagSet("schema-decode", flag.ExitOnError)
	var c common
	c.register(fs)
	job := fs.String("job", "", "Nomad job file (HCL)")
	task := fs.String("task", "", "task name in the job")
	_ = fs.Parse(args)
	if *job == "" || *task == "" {
		usageExit(fs, "--job and --task are required")
	}
	opts, err := c.options()
	if err != nil {
		usageExit(fs, err.Error())
	}
	h, err := host.LaunchBase(opts)
	if err != nil {
		finish(nil, err)
	}
	out := map[string]any{"plugin": h.InfoJSON()}
	if err := h.TaskSchema(); err != nil {
		h.Kill()
		finish(out, err)
	}
	out["spec"] = host.ProtoJSON(h.TaskSpecProto)
	if err := h.FetchCapabilities(); err != nil {
		h.Kill()
		finish(out, err)
	}
	r, err := h.DecodeJob(*job, *task)
	if err == nil {
		decodedJSON(out, r)
	}
	h.Kill()
	finish(out, err)
}

// cmdAgentConfig: the agent's validation launch: PluginInfo, ConfigSchema,
// agent config decoded with defaults, SetConfig twice without nomad_config.
func cmdAgentConfig(args []string) {
	fs := flag.NewFlagSet("agent-config", flag.ExitOnError)
	var c common
	c.register(fs)
	_ = fs.Parse(args)
	opts, err := c.options()
	if err != nil {
		usageExit(fs, err.Error())
	}
	opts.Validation = true
	h, err := host.LaunchBase(opts)
	if err != nil {
		finish(nil, err)
	}
	out := map[string]any{"plugin": h.InfoJSON(), "spec": host.ProtoJSON(h.ConfigSpec)}
	if h.ConfigSpec != nil {
		decodedJSON(out, h.AgentConfig)
	}
	h.Kill()
	finish(out, nil)
}
