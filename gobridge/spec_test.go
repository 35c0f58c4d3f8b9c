package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/containerd/v2/pkg/oci"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// buildSpec applies the JSON spec to containerd's default spec for a fake container,
// exactly as containers.create does after oci.WithImageConfig.
func buildSpec(t *testing.T, js string, img ocispec.ImageConfig) (*specs.Spec, error) {
	t.Helper()
	var s specJSON
	dec := json.NewDecoder(strings.NewReader(js))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		t.Fatalf("decode %s: %v", js, err)
	}
	opts, err := buildSpecOpts(&s, img)
	if err != nil {
		return nil, err
	}
	ctx := namespaces.WithNamespace(context.Background(), "test")
	c := &containers.Container{ID: "c1"}
	spec, err := oci.GenerateSpec(ctx, nil, c, opts...)
	return spec, err
}

var busybox = ocispec.ImageConfig{Entrypoint: []string{"/bin/sh", "-c"}, Cmd: []string{"echo configured"}}

func TestArgsSemantics(t *testing.T) {
	cases := []struct {
		js   string
		want string
	}{
		{`{}`, "/bin/sh|-c|echo configured"},
		{`{"args":["ls","-l"]}`, "ls|-l"},
		{`{"command":["echo hi"]}`, "/bin/sh|-c|echo hi"},
		{`{"entrypoint":["/bin/echo"]}`, "/bin/echo"},
		{`{"entrypoint":["/bin/echo"],"command":["a","b"]}`, "/bin/echo|a|b"},
		{`{"entrypoint":[],"command":["id"]}`, "id"},
	}
	for _, c := range cases {
		spec, err := buildSpec(t, c.js, busybox)
		if err != nil {
			t.Fatalf("%s: %v", c.js, err)
		}
		if got := strings.Join(spec.Process.Args, "|"); got != c.want {
			t.Errorf("%s: args %q, want %q", c.js, spec.Process.Args, c.want)
		}
	}
	if _, err := buildSpec(t, `{}`, ocispec.ImageConfig{}); statusOf(err) != statusInvalidArgument {
		t.Fatalf("no command: %v", err)
	}
}

func TestResourcesAndSecurity(t *testing.T) {
	spec, err := buildSpec(t, `{
		"env": ["A=1"], "cwd": "/srv", "hostname": "box", "memory_limit": 67108864,
		"memory_reservation": 33554432, "memory_swap": 134217728, "cpu_shares": 512,
		"cpu_quota": 50000, "cpu_period": 100000, "cpuset_cpus": "0", "cpuset_mems": "0",
		"pids_limit": 64, "oom_score_adj": 500, "shm_size": 1048576, "sysctls": {"net.ipv4.ip_forward": "1"},
		"cgroup_parent": "/nomad", "readonly_rootfs": true, "no_new_privileges": true, "tty": true,
		"cap_add": ["net_admin"], "cap_drop": ["CAP_CHOWN"], "seccomp": true,
		"annotations": {"k": "v"}, "netns_path": "/var/run/netns/x",
		"mounts": [{"type": "bind", "source": "/tmp", "destination": "/data", "options": ["rbind", "ro"]}]
	}`, busybox)
	if err != nil {
		t.Fatal(err)
	}
	r := spec.Linux.Resources
	if *r.Memory.Limit != 64<<20 || *r.Memory.Reservation != 32<<20 || *r.Memory.Swap != 128<<20 {
		t.Errorf("memory %+v", r.Memory)
	}
	if *r.CPU.Shares != 512 || *r.CPU.Quota != 50000 || *r.CPU.Period != 100000 || r.CPU.Cpus != "0" || r.CPU.Mems != "0" {
		t.Errorf("cpu %+v", r.CPU)
	}
	if *r.Pids.Limit != 64 || *spec.Process.OOMScoreAdj != 500 {
		t.Errorf("pids %+v oom %v", r.Pids, spec.Process.OOMScoreAdj)
	}
	if spec.Linux.CgroupsPath != "/nomad/c1" || spec.Linux.Sysctl["net.ipv4.ip_forward"] != "1" {
		t.Errorf("cgroup %q sysctl %v", spec.Linux.CgroupsPath, spec.Linux.Sysctl)
	}
	if !spec.Root.Readonly || !spec.Process.NoNewPrivileges || !spec.Process.Terminal {
		t.Errorf("readonly/nnp/tty not set")
	}
	if spec.Process.Cwd != "/srv" || spec.Hostname != "box" || !contains(spec.Process.Env, "A=1") {
		t.Errorf("cwd %q hostname %q env %v", spec.Process.Cwd, spec.Hostname, spec.Process.Env)
	}
	caps := spec.Process.Capabilities.Bounding
	if !contains(caps, "CAP_NET_ADMIN") || contains(caps, "CAP_CHOWN") {
		t.Errorf("caps %v", caps)
	}
	if spec.Linux.Seccomp == nil || len(spec.Linux.Seccomp.Syscalls) == 0 {
		t.Errorf("no default seccomp profile")
	}
	if spec.Annotations["k"] != "v" {
		t.Errorf("annotations %v", spec.Annotations)
	}
	var netns *specs.LinuxNamespace
	for i, ns := range spec.Linux.Namespaces {
		if ns.Type == specs.NetworkNamespace {
			netns = &spec.Linux.Namespaces[i]
		}
	}
	if netns == nil || netns.Path != "/var/run/netns/x" {
		t.Errorf("netns %+v", netns)
	}
	var shm, data bool
	for _, m := range spec.Mounts {
		if m.Destination == "/dev/shm" && contains(m.Options, "size=1024k") {
			shm = true
		}
		if m.Destination == "/data" && m.Source == "/tmp" {
			data = true
		}
	}
	if !shm || !data {
		t.Errorf("mounts %+v", spec.Mounts)
	}
}

func TestHostNamespacesAndPrivileged(t *testing.T) {
	spec, err := buildSpec(t, `{"host_network": true, "host_pid": true, "privileged": true, "seccomp": true}`, busybox)
	if err != nil {
		t.Fatal(err)
	}
	for _, ns := range spec.Linux.Namespaces {
		if ns.Type == specs.NetworkNamespace || ns.Type == specs.PIDNamespace {
			t.Errorf("namespace %s still private", ns.Type)
		}
	}
	if spec.Linux.Seccomp != nil {
		t.Errorf("privileged container has seccomp")
	}
	if len(spec.Linux.Resources.Devices) == 0 || !spec.Linux.Resources.Devices[len(spec.Linux.Resources.Devices)-1].Allow {
		t.Errorf("devices not all allowed: %+v", spec.Linux.Resources.Devices)
	}
	if len(spec.Linux.MaskedPaths) != 0 {
		t.Errorf("masked paths kept: %v", spec.Linux.MaskedPaths)
	}
}

func TestCapDropAll(t *testing.T) {
	spec, err := buildSpec(t, `{"cap_drop": ["ALL"], "cap_add": ["kill"]}`, busybox)
	if err != nil {
		t.Fatal(err)
	}
	if b := spec.Process.Capabilities.Bounding; len(b) != 1 || b[0] != "CAP_KILL" {
		t.Errorf("bounding %v", b)
	}
}

func TestValidationNamesFieldAndValue(t *testing.T) {
	cases := map[string]string{
		`{"memory_limit": -5}`:       "spec.memory_limit -5",
		`{"cap_add": ["NOT_A_CAP"]}`: "spec.cap_add NOT_A_CAP",
		`{"cwd": "relative"}`:        "spec.cwd relative",
		`{"env": ["NOEQUALS"]}`:      "spec.env[0] NOEQUALS",
		`{"mounts": [{"type": "bind", "source": "x", "destination": "/d"}]}`: "spec.mounts[0].source x",
		`{"mounts": [{"type": "tmpfs", "destination": "d"}]}`:                "spec.mounts[0].destination d",
		`{"host_network": true, "netns_path": "/run/netns/a"}`:               "spec.netns_path /run/netns/a",
		`{"oom_score_adj": 5000}`:                                            "spec.oom_score_adj 5000",
		`{"memory_limit": 100, "memory_swap": 50}`:                           "spec.memory_swap 50",
		`{"devices": [{"host_path": "/dev/null", "permissions": "rwx"}]}`:    "spec.devices[0].permissions rwx",
		`{"seccomp_profile": "/nonexistent/profile.json"}`:                   "spec.seccomp_profile /nonexistent/profile.json",
		`{"shm_size": 10}`: "spec.shm_size 10",
	}
	for js, want := range cases {
		_, err := buildSpec(t, js, busybox)
		if statusOf(err) != statusInvalidArgument || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err %v, want INVALID_ARGUMENT naming %q", js, err, want)
		}
	}
}

func TestEventFilters(t *testing.T) {
	got := eventFilters("ns1", []string{"/tasks/exit", "/tasks/oom"})
	if len(got) != 2 || got[0] != `namespace==ns1,topic=="/tasks/exit"` {
		t.Fatalf("filters %v", got)
	}
	if got := eventFilters("ns1", nil); len(got) != 1 || got[0] != "namespace==ns1" {
		t.Fatalf("filters %v", got)
	}
}

func TestRefsAndCredentialHost(t *testing.T) {
	ref, err := normalizeRef("busybox")
	if err != nil || ref != "docker.io/library/busybox:latest" {
		t.Fatalf("normalizeRef = %q, %v", ref, err)
	}
	if _, err := normalizeRef("bad ref!"); statusOf(err) != statusInvalidArgument {
		t.Fatalf("bad ref accepted: %v", err)
	}
	if h := registryHost("docker.io/library/busybox:latest"); h != "registry-1.docker.io" {
		t.Fatalf("docker.io host %q", h)
	}
	if h := registryHost("127.0.0.1:5001/nomad-ctr/private:latest"); h != "127.0.0.1:5001" {
		t.Fatalf("host %q", h)
	}
}

func TestPullErrorRedactsPassword(t *testing.T) {
	err := pullError("r/x:1", &testErr{"401 Unauthorized: bad creds s3cret"}, &authReq{Username: "u", Password: "s3cret"})
	if strings.Contains(err.Error(), "s3cret") || statusOf(err) != statusUnauthenticated {
		t.Fatalf("err %v (%s)", err, statusName(statusOf(err)))
	}
}

type testErr struct{ s string }

func (e *testErr) Error() string { return e.s }
