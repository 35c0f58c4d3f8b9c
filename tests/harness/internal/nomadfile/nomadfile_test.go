package nomadfile

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestExampleHelloJob(t *testing.T) {
	task, err := ParseJob("../../../../example/hello.nomad", "hello")
	if err != nil {
		t.Fatal(err)
	}
	if task.Driver != "containerd-driver" || task.CPU != 100 || task.MemoryMB != 64 || task.Group != "hello" {
		t.Fatalf("task = %+v", task)
	}
	if task.KillTimeout != 5*time.Second || task.KillSignal != "" {
		t.Fatalf("kill settings: %v %q", task.KillTimeout, task.KillSignal)
	}
	if task.Config == nil || task.Config.Attributes["image"] == nil {
		t.Fatal("config block with image expected")
	}
}

func TestExampleAgent(t *testing.T) {
	a, err := ParseAgent("../../../../example/agent.hcl")
	if err != nil {
		t.Fatal(err)
	}
	p := a.Plugins["containerd-driver"]
	if p == nil || p.Config == nil || a.PluginDir == "" {
		t.Fatalf("agent = %+v", a)
	}
	for _, k := range []string{"enabled", "containerd_runtime", "stats_interval"} {
		if p.Config.Attributes[k] == nil {
			t.Errorf("plugin config lacks %s", k)
		}
	}
}

func TestExampleVolumeMountsAndAgentHostVolume(t *testing.T) {
	task, err := ParseJob("../../../../example/volume_mount.nomad", "volumes")
	if err != nil {
		t.Fatal(err)
	}
	want := []VolumeMount{
		{Volume: "s1", Type: "host", Source: "s1", Destination: "/tmp/t1", Propagation: "private"},
		{Volume: "s1", Type: "host", Source: "s1", Destination: "/tmp/read_only_target", ReadOnly: true, Propagation: "private"},
	}
	if len(task.VolumeMounts) != len(want) {
		t.Fatalf("volume mounts = %+v", task.VolumeMounts)
	}
	for i := range want {
		if task.VolumeMounts[i] != want[i] {
			t.Errorf("mount %d = %+v, want %+v", i, task.VolumeMounts[i], want[i])
		}
	}
	a, err := ParseAgent("../../../../example/agent.hcl")
	if err != nil {
		t.Fatal(err)
	}
	if hv := a.HostVolumes["s1"]; hv.Path != "/tmp/host_volume/s1" || hv.ReadOnly {
		t.Fatalf("host volume s1 = %+v", hv)
	}
}

func TestExampleDNS(t *testing.T) {
	task, err := ParseJob("../../../../example/dns.nomad", "dns")
	if err != nil {
		t.Fatal(err)
	}
	d := task.DNS
	if d == nil || strings.Join(d.Servers, ",") != "127.0.0.1,127.0.0.2" ||
		strings.Join(d.Searches, ",") != "internal.corp" || strings.Join(d.Options, ",") != "ndots:2" {
		t.Fatalf("dns = %+v", d)
	}
	hello, err := ParseJob("../../../../example/hello.nomad", "hello")
	if err != nil {
		t.Fatal(err)
	}
	if hello.DNS != nil || hello.VolumeMounts != nil {
		t.Fatalf("hello has no dns or volumes: %+v %+v", hello.DNS, hello.VolumeMounts)
	}
}

func TestVolumeMountErrors(t *testing.T) {
	for src, want := range map[string]string{
		"volume_mount {\n volume = \"nope\"\n destination = \"/x\"\n}": `the group has no volume "nope"`,
		`volume_mount { volume = "v" }`:                                "destination is required",
	} {
		p := write(t, `job "j" {
  group "g" {
    volume "v" {
      type   = "host"
      source = "s"
    }
    task "t" {
      driver = "x"
      `+src+`
    }
  }
}`)
		if _, err := ParseJob(p, "t"); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err = %v, want %q", src, err, want)
		}
	}
}

func write(t *testing.T, src string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "job.nomad")
	if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestTaskFields(t *testing.T) {
	p := write(t, `
job "j" {
  meta { a = "job" }
  group "g" {
    meta { a = "group" }
    task "other" {
      driver = "x"
    }
    task "t" {
      driver       = "containerd-driver"
      user         = "nobody"
      kill_timeout = "12s"
      kill_signal  = "SIGUSR1"
      env {
        FOO = "bar"
        DIR = "${NOMAD_TASK_DIR}/x"
      }
      resources {
        cpu        = 250
        memory     = 128
        memory_max = 256
      }
      config {
        image = "img"
      }
    }
  }
}`)
	task, err := ParseJob(p, "t")
	if err != nil {
		t.Fatal(err)
	}
	if task.User != "nobody" || task.KillTimeout != 12*time.Second || task.KillSignal != "SIGUSR1" {
		t.Fatalf("task = %+v", task)
	}
	if task.CPU != 250 || task.MemoryMB != 128 || task.MemoryMaxMB != 256 {
		t.Fatalf("resources = %d %d %d", task.CPU, task.MemoryMB, task.MemoryMaxMB)
	}
	if len(task.Env) != 2 || task.Meta["a"] != "group" || task.JobName != "j" {
		t.Fatalf("env/meta = %v %v", task.Env, task.Meta)
	}
	if _, err := ParseJob(p, "missing"); err == nil || !strings.Contains(err.Error(), `no task "missing"`) {
		t.Fatalf("missing task: %v", err)
	}
}

func TestBadKillTimeout(t *testing.T) {
	p := write(t, `job "j" {
  group "g" {
    task "t" {
      driver = "d"
      kill_timeout = "soon"
    }
  }
}`)
	if _, err := ParseJob(p, "t"); err == nil || !strings.Contains(err.Error(), "kill_timeout") {
		t.Fatalf("want kill_timeout error, got %v", err)
	}
}

func TestExampleBridgeNetwork(t *testing.T) {
	task, err := ParseJob("../../../../example/bridge.nomad", "web")
	if err != nil {
		t.Fatal(err)
	}
	n := task.Network
	if n == nil || n.Mode != "bridge" || len(n.Ports) != 1 {
		t.Fatalf("network = %+v", n)
	}
	if p := n.Ports[0]; p.Label != "http" || p.To != 8080 || p.Static != 0 {
		t.Fatalf("port = %+v", p)
	}
	hello, err := ParseJob("../../../../example/hello.nomad", "hello")
	if err != nil {
		t.Fatal(err)
	}
	if hello.Network != nil {
		t.Fatalf("hello has no network block: %+v", hello.Network)
	}
}

func TestResourcesCores(t *testing.T) {
	job := func(resources string) string {
		return write(t, `job "j" {
  group "g" {
    task "t" {
      driver = "d"
      resources {
        `+resources+`
      }
    }
  }
}`)
	}
	task, err := ParseJob(job("cores = 2\nmemory = 64"), "t")
	if err != nil {
		t.Fatal(err)
	}
	if task.Cores != 2 || task.CPU != 0 || task.MemoryMB != 64 {
		t.Fatalf("cores/cpu/memory = %d %d %d", task.Cores, task.CPU, task.MemoryMB)
	}
	if task, err = ParseJob(job("memory = 64"), "t"); err != nil || task.Cores != 0 || task.CPU != DefaultCPU {
		t.Fatalf("no cores: %+v %v", task, err)
	}
	for src, want := range map[string]string{
		"cores = 1\ncpu = 500": "cpu or cores, not both",
		"cores = -1":           "resources.cores = -1",
	} {
		if _, err := ParseJob(job(src), "t"); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: err = %v, want %q", src, err, want)
		}
	}
}
