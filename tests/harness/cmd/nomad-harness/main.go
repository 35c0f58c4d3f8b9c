// Command nomad-harness plays the Nomad client's part against a task-driver
// plugin so tests can drive the plugin exactly as Nomad would. Every
// subcommand prints JSON on stdout; plugin and harness logs go to stderr.
//
// Exit codes: 0 the protocol went right (whatever the task's own exit code),
// 1 protocol violation or harness failure, 2 usage error, 3 the driver
// refused (config validation failure or an error status from StartTask,
// SetConfig, ...), with the details in the JSON.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/nomad-ctr/nomad_ctr/tests/harness/internal/host"
	"github.com/nomad-ctr/nomad_ctr/tests/harness/internal/nomadfile"
)

const usage = `usage: nomad-harness <command> [flags]

commands:
  schema-decode  decode a job task's config {} block with the plugin's TaskConfigSchema
  agent-config   decode the agent's plugin config {} block with the plugin's ConfigSchema
  run            full task lifecycle (start, wait, optional signals/stop, destroy)
  start          start a task, print its handle, then crash or leave the plugin
  recover        relaunch the plugin, RecoverTask from a handle file, wait, destroy
  session        JSON-lines request/response mode for scripted tests

run 'nomad-harness <command> -h' for the flags of a command
`

type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

// common holds the plugin-launch flags every command shares.
type common struct {
	plugin, pluginName, agentFile, logLevel, logFile string
	pluginArgs                                       stringList
	fpTimeout                                        time.Duration
	allowUnhealthy                                   bool
	agent                                            *nomadfile.Agent
}

func (c *common) register(fs *flag.FlagSet) {
	fs.StringVar(&c.plugin, "plugin", "", "plugin executable (default: <plugin_dir>/<plugin-name> from --agent)")
	fs.Var(&c.pluginArgs, "plugin-arg", "argument for the plugin (repeatable; default: args from the agent's plugin block)")
	fs.StringVar(&c.pluginName, "plugin-name", "", "plugin block name in the agent config (default: the plugin file name if such a block exists, else containerd-driver)")
	fs.StringVar(&c.agentFile, "agent", "", "Nomad agent config file (HCL)")
	fs.StringVar(&c.logLevel, "log-level", "debug", "harness/plugin log level")
	fs.StringVar(&c.logFile, "log-file", "", "write logs here instead of stderr")
	fs.DurationVar(&c.fpTimeout, "fingerprint-timeout", 30*time.Second, "how long to wait for the first fingerprint")
	fs.BoolVar(&c.allowUnhealthy, "allow-unhealthy", false, "accept a first fingerprint that is not HEALTHY")
}

func (c *common) options() (host.Options, error) {
	if c.agentFile != "" {
		a, err := nomadfile.ParseAgent(c.agentFile)
		if err != nil {
			return host.Options{}, fmt.Errorf("agent config: %w", err)
		}
		c.agent = a
	}
	name := c.pluginName
	if name == "" {
		name = "containerd-driver"
		if c.plugin != "" && c.agent != nil {
			if _, ok := c.agent.Plugins[filepath.Base(c.plugin)]; ok {
				name = filepath.Base(c.plugin)
			}
		}
	}
	path := c.plugin
	if path == "" {
		if c.agent == nil || c.agent.PluginDir == "" {
			return host.Options{}, errors.New("--plugin is required (or an --agent with plugin_dir)")
		}
		path = filepath.Join(c.agent.PluginDir, name)
	}
	out := os.Stderr
	if c.logFile != "" {
		f, err := os.OpenFile(c.logFile, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
		if err != nil {
			return host.Options{}, err
		}
		out = f
	}
	logger := hclog.New(&hclog.LoggerOptions{Name: "harness", Output: out, Level: hclog.LevelFromString(c.logLevel)})
	return host.Options{
		PluginPath: path, PluginArgs: c.pluginArgs, Agent: c.agent, PluginName: name,
		Logger: logger, FingerprintTimeout: c.fpTimeout, AllowUnhealthy: c.allowUnhealthy,
	}, nil
}

func printJSON(v any) {
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// exitFor maps an error to the harness exit code.
func exitFor(err error) int {
	if err == nil {
		return 0
	}
	var se *host.StageError
	if errors.As(err, &se) && se.Refused {
		return 3
	}
	return 1
}

// finish prints out (plus the error details, if any) and exits.
func finish(out map[string]any, err error) {
	if out == nil {
		out = map[string]any{}
	}
	out["ok"] = err == nil
	for k, v := range host.ErrorJSON(err) {
		out[k] = v
	}
	printJSON(out)
	os.Exit(exitFor(err))
}

func usageExit(fs *flag.FlagSet, msg string) {
	fmt.Fprintf(os.Stderr, "nomad-harness %s: %s\n", fs.Name(), msg)
	fs.Usage()
	os.Exit(2)
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	cmd, args := os.Args[1], os.Args[2:]
	switch cmd {
	case "schema-decode":
		cmdSchemaDecode(args)
	case "agent-config":
		cmdAgentConfig(args)
	case "run":
		cmdRun(args)
	case "start":
		cmdStart(args)
	case "recover":
		cmdRecover(args)
	case "session":
		cmdSession(args)
	case "-h", "--help", "help":
		fmt.Print(usage)
	default:
		fmt.Fprintf(os.Stderr, "nomad-harness: unknown command %q\n%s", cmd, usage)
		os.Exit(2)
	}
}
