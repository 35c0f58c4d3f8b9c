// Package nomadfile reads just enough of Nomad job files and agent config files
// for the harness: the task's driver, config block, env, user, kill settings and
// resources (cpu or cores, memory, memory_max); the agent's plugin_dir, data_dir and plugin blocks.
package nomadfile

import (
	"fmt"
	"os"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
)

// Task is one task of a job file with the fields the harness uses.
type Task struct {
	JobID       string
	JobName     string
	Namespace   string
	Datacenter  string
	Region      string
	Group       string
	Name        string
	Driver      string
	User        string
	KillSignal  string
	KillTimeout time.Duration
	CPU         int64 // MHz; 0 when the task reserves cores
	Cores       int64 // resources.cores: whole cores reserved for the task (0: none)
	MemoryMB    int64
	MemoryMaxMB int64
	// Env holds unevaluated env attributes; values may reference NOMAD_* variables.
	Env    map[string]hcl.Expression
	Meta   map[string]string
	Config *hclsyntax.Body // nil when the task has no config block
	// VolumeMounts are the task's volume_mount blocks joined with the group's
	// volume blocks (host volumes only).
	VolumeMounts []VolumeMount
	// DNS is the group's network { dns { ... } } block; nil when absent.
	DNS *DNS
	// Network is the group's network block; nil when absent.
	Network *Network
}

// Network is a group's network block: its mode and ports.
type Network struct {
	Mode     string // "host" when absent, as in Nomad
	Hostname string
	Ports    []Port
}

// Port is one port "<label>" { static, to } of a group network.
type Port struct {
	Label  string
	Static int64 // 0: dynamic (the client picks a free host port)
	To     int64 // port inside the network namespace; 0: the host port
}

// VolumeMount is one task volume_mount of a group host volume.
type VolumeMount struct {
	Volume      string // the group's volume label
	Type        string // the group volume's type; only "host" can be mounted
	Source      string // the agent's host_volume name
	Destination string
	ReadOnly    bool // the volume's or the mount's read_only
	Propagation string
}

// DNS is a group network's dns block.
type DNS struct {
	Servers, Searches, Options []string
}

// Nomad's defaults for a task that leaves these out.
const (
	DefaultCPU         = 100
	DefaultMemoryMB    = 300
	DefaultKillTimeout = 5 * time.Second
)

func parse(path string) (*hclsyntax.Body, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	f, diags := hclsyntax.ParseConfig(src, path, hcl.InitialPos)
	if diags.HasErrors() {
		return nil, fmt.Errorf("%s", diags.Error())
	}
	return f.Body.(*hclsyntax.Body), nil
}

func blocks(b *hclsyntax.Body, typ string) []*hclsyntax.Block {
	var out []*hclsyntax.Block
	for _, blk := range b.Blocks {
		if blk.Type == typ {
			out = append(out, blk)
		}
	}
	return out
}

// constant evaluates an attribute that must not reference variables.
func constant(b *hclsyntax.Body, name string, ty cty.Type) (cty.Value, bool, error) {
	a, ok := b.Attributes[name]
	if !ok {
		return cty.NullVal(ty), false, nil
	}
	v, diags := a.Expr.Value(nil)
	if diags.HasErrors() {
		return cty.NilVal, false, fmt.Errorf("%s", diags.Error())
	}
	v, err := convert.Convert(v, ty)
	if err != nil {
		return cty.NilVal, false, fmt.Errorf("%s: attribute %q: %v", a.SrcRange, name, err)
	}
	if v.IsNull() {
		return v, false, nil
	}
	return v, true, nil
}

func str(b *hclsyntax.Body, name, def string) (string, error) {
	v, ok, err := constant(b, name, cty.String)
	if err != nil || !ok {
		return def, err
	}
	return v.AsString(), nil
}

func num(b *hclsyntax.Body, name string, def int64) (int64, error) {
	v, ok, err := constant(b, name, cty.Number)
	if err != nil || !ok {
		return def, err
	}
	n, acc := v.AsBigFloat().Int64()
	if acc != 0 {
		return 0, fmt.Errorf("attribute %q: %s is not a whole number", name, v.AsBigFloat().String())
	}
	return n, nil
}

func boolean(b *hclsyntax.Body, name string) (bool, error) {
	v, ok, err := constant(b, name, cty.Bool)
	if err != nil || !ok {
		return false, err
	}
	return v.True(), nil
}

func strList(b *hclsyntax.Body, name string) ([]string, error) {
	v, ok, err := constant(b, name, cty.List(cty.String))
	if err != nil || !ok {
		return nil, err
	}
	var out []string
	for _, s := range v.AsValueSlice() {
		out = append(out, s.AsString())
	}
	return out, nil
}

// groupDNS reads network { dns { servers, searches, options } } of a group.
func groupDNS(g *hclsyntax.Body) (*DNS, error) {
	for _, n := range blocks(g, "network") {
		for _, d := range blocks(n.Body, "dns") {
			dns := &DNS{}
			var err error
			if dns.Servers, err = strList(d.Body, "servers"); err != nil {
				return nil, err
			}
			if dns.Searches, err = strList(d.Body, "searches"); err != nil {
				return nil, err
			}
			if dns.Options, err = strList(d.Body, "options"); err != nil {
				return nil, err
			}
			return dns, nil
		}
	}
	return nil, nil
}

// groupNetwork reads the group's network block (mode, hostname, port blocks).
func groupNetwork(g *hclsyntax.Body) (*Network, error) {
	nets := blocks(g, "network")
	if len(nets) == 0 {
		return nil, nil
	}
	if len(nets) > 1 {
		return nil, fmt.Errorf("%s: more than one network block", nets[1].DefRange())
	}
	n := &Network{}
	var err error
	if n.Mode, err = str(nets[0].Body, "mode", "host"); err != nil {
		return nil, err
	}
	if n.Hostname, err = str(nets[0].Body, "hostname", ""); err != nil {
		return nil, err
	}
	for _, pb := range blocks(nets[0].Body, "port") {
		if len(pb.Labels) != 1 {
			return nil, fmt.Errorf("%s: port block needs one label", pb.DefRange())
		}
		p := Port{Label: pb.Labels[0]}
		if p.Static, err = num(pb.Body, "static", 0); err != nil {
			return nil, err
		}
		if p.To, err = num(pb.Body, "to", 0); err != nil {
			return nil, err
		}
		n.Ports = append(n.Ports, p)
	}
	return n, nil
}

// volumeMounts joins the task's volume_mount blocks with the group's host volumes.
func volumeMounts(g, tb *hclsyntax.Body) ([]VolumeMount, error) {
	type groupVolume struct {
		typ, source string
		readOnly    bool
	}
	vols := map[string]groupVolume{}
	for _, vb := range blocks(g, "volume") {
		if len(vb.Labels) != 1 {
			return nil, fmt.Errorf("%s: volume block needs one label", vb.DefRange())
		}
		typ, err := str(vb.Body, "type", "")
		if err != nil {
			return nil, err
		}
		src, err := str(vb.Body, "source", "")
		if err != nil {
			return nil, err
		}
		ro, err := boolean(vb.Body, "read_only")
		if err != nil {
			return nil, err
		}
		vols[vb.Labels[0]] = groupVolume{typ: typ, source: src, readOnly: ro}
	}
	var out []VolumeMount
	for _, mb := range blocks(tb, "volume_mount") {
		m := VolumeMount{}
		var err error
		if m.Volume, err = str(mb.Body, "volume", ""); err != nil {
			return nil, err
		}
		gv, ok := vols[m.Volume]
		if !ok {
			return nil, fmt.Errorf("volume_mount: the group has no volume %q", m.Volume)
		}
		if m.Destination, err = str(mb.Body, "destination", ""); err != nil {
			return nil, err
		}
		if m.Destination == "" {
			return nil, fmt.Errorf("volume_mount of %q: destination is required", m.Volume)
		}
		if m.ReadOnly, err = boolean(mb.Body, "read_only"); err != nil {
			return nil, err
		}
		if m.Propagation, err = str(mb.Body, "propagation_mode", "private"); err != nil {
			return nil, err
		}
		m.Type, m.Source, m.ReadOnly = gv.typ, gv.source, m.ReadOnly || gv.readOnly
		out = append(out, m)
	}
	return out, nil
}

func strMap(b *hclsyntax.Body) (map[string]string, error) {
	out := map[string]string{}
	for name := range b.Attributes {
		s, err := str(b, name, "")
		if err != nil {
			return nil, err
		}
		out[name] = s
	}
	return out, nil
}

// ParseJob finds task taskName in the job file at path.
func ParseJob(path, taskName string) (*Task, error) {
	root, err := parse(path)
	if err != nil {
		return nil, err
	}
	jobs := blocks(root, "job")
	if len(jobs) != 1 || len(jobs[0].Labels) != 1 {
		return nil, fmt.Errorf("%s: want exactly one job \"<id>\" block", path)
	}
	job := jobs[0]
	t := &Task{JobID: job.Labels[0], Namespace: "default", Region: "global", Datacenter: "dc1", Meta: map[string]string{}}
	if t.JobName, err = str(job.Body, "name", t.JobID); err != nil {
		return nil, err
	}
	if t.Namespace, err = str(job.Body, "namespace", t.Namespace); err != nil {
		return nil, err
	}
	if t.Region, err = str(job.Body, "region", t.Region); err != nil {
		return nil, err
	}
	if v, ok, err := constant(job.Body, "datacenters", cty.List(cty.String)); err != nil {
		return nil, err
	} else if ok && v.LengthInt() > 0 {
		t.Datacenter = v.Index(cty.NumberIntVal(0)).AsString()
	}
	// meta merges job < group < task, as Nomad does.
	addMeta := func(b *hclsyntax.Body) error {
		for _, m := range blocks(b, "meta") {
			kv, err := strMap(m.Body)
			if err != nil {
				return err
			}
			for k, v := range kv {
				t.Meta[k] = v
			}
		}
		return nil
	}
	if err := addMeta(job.Body); err != nil {
		return nil, err
	}

	var found, foundGroup *hclsyntax.Block
	for _, g := range blocks(job.Body, "group") {
		for _, tb := range blocks(g.Body, "task") {
			if len(tb.Labels) == 1 && tb.Labels[0] == taskName {
				if found != nil {
					return nil, fmt.Errorf("%s: task %q appears more than once", path, taskName)
				}
				found, foundGroup = tb, g
				t.Group = g.Labels[0]
				if err := addMeta(g.Body); err != nil {
					return nil, err
				}
			}
		}
	}
	if found == nil {
		return nil, fmt.Errorf("%s: no task %q in job %q", path, taskName, t.JobID)
	}
	if err := addMeta(found.Body); err != nil {
		return nil, err
	}
	t.Name = taskName
	tb := found.Body
	if t.Driver, err = str(tb, "driver", ""); err != nil {
		return nil, err
	}
	if t.Driver == "" {
		return nil, fmt.Errorf("%s: task %q has no driver", path, taskName)
	}
	if t.User, err = str(tb, "user", ""); err != nil {
		return nil, err
	}
	if t.KillSignal, err = str(tb, "kill_signal", ""); err != nil {
		return nil, err
	}
	kt, err := str(tb, "kill_timeout", "")
	if err != nil {
		return nil, err
	}
	t.KillTimeout = DefaultKillTimeout
	if kt != "" {
		if t.KillTimeout, err = time.ParseDuration(kt); err != nil {
			return nil, fmt.Errorf("task %q: kill_timeout %q: %v", taskName, kt, err)
		}
	}
	t.CPU, t.MemoryMB = DefaultCPU, DefaultMemoryMB
	if rs := blocks(tb, "resources"); len(rs) > 0 {
		rb := rs[0].Body
		if t.Cores, err = num(rb, "cores", 0); err != nil {
			return nil, err
		}
		_, hasCPU := rb.Attributes["cpu"]
		switch {
		case t.Cores < 0:
			return nil, fmt.Errorf("task %q: resources.cores = %d must not be negative", taskName, t.Cores)
		case t.Cores > 0 && hasCPU:
			// Nomad's job validation: a task asks for cpu or cores, not both
			return nil, fmt.Errorf("task %q: resources: ask for cpu or cores, not both", taskName)
		case t.Cores > 0:
			t.CPU = 0 // the client derives the shares from the reserved cores
		default:
			if t.CPU, err = num(rb, "cpu", DefaultCPU); err != nil {
				return nil, err
			}
		}
		if t.MemoryMB, err = num(rb, "memory", DefaultMemoryMB); err != nil {
			return nil, err
		}
		if t.MemoryMaxMB, err = num(rb, "memory_max", 0); err != nil {
			return nil, err
		}
	}
	t.Env = map[string]hcl.Expression{}
	for _, e := range blocks(tb, "env") {
		for k, a := range e.Body.Attributes {
			t.Env[k] = a.Expr
		}
	}
	switch cs := blocks(tb, "config"); len(cs) {
	case 0:
	case 1:
		t.Config = cs[0].Body
	default:
		return nil, fmt.Errorf("%s: task %q has more than one config block", path, taskName)
	}
	if t.VolumeMounts, err = volumeMounts(foundGroup.Body, tb); err != nil {
		return nil, fmt.Errorf("%s: task %q: %w", path, taskName, err)
	}
	if t.DNS, err = groupDNS(foundGroup.Body); err != nil {
		return nil, fmt.Errorf("%s: group %q: %w", path, t.Group, err)
	}
	if t.Network, err = groupNetwork(foundGroup.Body); err != nil {
		return nil, fmt.Errorf("%s: group %q: %w", path, t.Group, err)
	}
	return t, nil
}

// Plugin is one `plugin "<binary>" { args = [...] config { ... } }` block.
type Plugin struct {
	Name   string
	Args   []string
	Config *hclsyntax.Body // nil when absent
}

// Agent is the part of a Nomad agent config the harness uses.
type Agent struct {
	DataDir        string
	PluginDir      string
	MaxKillTimeout time.Duration
	Plugins        map[string]*Plugin
	HostVolumes    map[string]HostVolume // client { host_volume "name" { ... } }
}

// HostVolume is a client host_volume block.
type HostVolume struct {
	Path     string
	ReadOnly bool
}

// ParseAgent reads an agent config file.
func ParseAgent(path string) (*Agent, error) {
	root, err := parse(path)
	if err != nil {
		return nil, err
	}
	a := &Agent{Plugins: map[string]*Plugin{}, MaxKillTimeout: 30 * time.Second, HostVolumes: map[string]HostVolume{}}
	if a.DataDir, err = str(root, "data_dir", ""); err != nil {
		return nil, err
	}
	if a.PluginDir, err = str(root, "plugin_dir", ""); err != nil {
		return nil, err
	}
	for _, c := range blocks(root, "client") {
		mkt, err := str(c.Body, "max_kill_timeout", "")
		if err != nil {
			return nil, err
		}
		if mkt != "" {
			if a.MaxKillTimeout, err = time.ParseDuration(mkt); err != nil {
				return nil, fmt.Errorf("client.max_kill_timeout %q: %v", mkt, err)
			}
		}
		for _, hv := range blocks(c.Body, "host_volume") {
			if len(hv.Labels) != 1 {
				return nil, fmt.Errorf("%s: host_volume block needs one label", hv.DefRange())
			}
			v := HostVolume{}
			if v.Path, err = str(hv.Body, "path", ""); err != nil {
				return nil, err
			}
			if v.ReadOnly, err = boolean(hv.Body, "read_only"); err != nil {
				return nil, err
			}
			a.HostVolumes[hv.Labels[0]] = v
		}
	}
	for _, pb := range blocks(root, "plugin") {
		if len(pb.Labels) != 1 {
			return nil, fmt.Errorf("%s: plugin block needs one label (the binary name)", pb.DefRange())
		}
		p := &Plugin{Name: pb.Labels[0]}
		if v, ok, err := constant(pb.Body, "args", cty.List(cty.String)); err != nil {
			return nil, err
		} else if ok {
			for _, s := range v.AsValueSlice() {
				p.Args = append(p.Args, s.AsString())
			}
		}
		switch cs := blocks(pb.Body, "config"); len(cs) {
		case 0:
		case 1:
			p.Config = cs[0].Body
		default:
			return nil, fmt.Errorf("plugin %q has more than one config block", p.Name)
		}
		a.Plugins[p.Name] = p
	}
	return a, nil
}
