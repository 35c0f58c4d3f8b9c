package host

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/nomad-ctr/nomad_ctr/tests/harness/internal/nomadfile"
)

func TestParseCPUList(t *testing.T) {
	for in, want := range map[string][]int{
		"0-1\n":     {0, 1},
		"0":         {0},
		"0-2,5,7-8": {0, 1, 2, 5, 7, 8},
		"":          nil,
	} {
		got, err := parseCPUList(in)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("parseCPUList(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"a", "3-1", "-1", "1-x"} {
		if _, err := parseCPUList(bad); err == nil {
			t.Errorf("parseCPUList(%q) should fail", bad)
		}
	}
}

func TestCoreFormats(t *testing.T) {
	if got := joinCores([]int{2, 3, 5}); got != "2,3,5" {
		t.Errorf("joinCores = %q", got)
	}
	if got := coreList([]int{0, 1, 2, 5, 7, 8}); got != "0-2,5,7-8" {
		t.Errorf("coreList = %q", got)
	}
}

func TestCoreBookReservesFromTheTopAndReleases(t *testing.T) {
	var b coreBook
	online := []int{0, 1, 2, 3}
	a, err := b.reserve("a", 1, online)
	if err != nil || !reflect.DeepEqual(a, []int{3}) {
		t.Fatalf("first = %v, %v", a, err)
	}
	c, err := b.reserve("c", 2, online)
	if err != nil || !reflect.DeepEqual(c, []int{1, 2}) {
		t.Fatalf("second = %v, %v", c, err)
	}
	if _, err := b.reserve("d", 2, online); err == nil || !strings.Contains(err.Error(), "only 1 of the node's 4") {
		t.Fatalf("exhausted: %v", err)
	}
	b.release("a")
	if d, err := b.reserve("d", 2, online); err != nil || !reflect.DeepEqual(d, []int{0, 3}) {
		t.Fatalf("after release = %v, %v", d, err)
	}
}

// A job with resources { cores = 1 } gets the highest online core as
// LinuxResources.cpuset_cpus, its MHz as shares and NOMAD_CPU_CORES; a failed
// StartTask gives the core back.
func TestPrepareTaskReservesCores(t *testing.T) {
	online, err := onlineCPUs()
	if err != nil {
		t.Skip(err)
	}
	h := launchFake(t)
	p := filepath.Join(t.TempDir(), "job.nomad")
	src := `job "j" {
  group "g" {
    task "t" {
      driver = "fake"
      config {
        image = "missing"
      }
      resources {
        cores = 1
      }
    }
  }
}`
	if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	job, err := nomadfile.ParseJob(p, "t")
	if err != nil {
		t.Fatal(err)
	}
	task, err := h.PrepareTask(job, t.TempDir(), "")
	if err != nil {
		t.Fatal(err)
	}
	top := joinCores(online[len(online)-1:])
	lr := task.Config.GetResources().GetLinuxResources()
	if lr.GetCpusetCpus() != top || task.Config.Env["NOMAD_CPU_CORES"] != top {
		t.Fatalf("cpuset_cpus = %q, NOMAD_CPU_CORES = %q, want %q", lr.GetCpusetCpus(), task.Config.Env["NOMAD_CPU_CORES"], top)
	}
	if lr.GetCpuShares() <= 0 || task.Config.GetResources().GetAllocatedResources().GetCpu().GetCpuShares() != lr.GetCpuShares() {
		t.Fatalf("shares = %d / %d", lr.GetCpuShares(), task.Config.GetResources().GetAllocatedResources().GetCpu().GetCpuShares())
	}
	if len(online) == 1 {
		if _, err := h.PrepareTask(job, t.TempDir(), ""); err == nil || !strings.Contains(err.Error(), "resources.cores = 1") {
			t.Fatalf("the only core is taken: %v", err)
		}
	}
	if err := h.Start(task); err == nil {
		t.Fatal("image missing must fail")
	}
	again, err := h.PrepareTask(job, t.TempDir(), "")
	if err != nil || again.Config.GetResources().GetLinuxResources().GetCpusetCpus() != top {
		t.Fatalf("after the failed start the core is free again: %v", err)
	}
}
