package host

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nomad-ctr/nomad_ctr/tests/harness/internal/nomadfile"
)

func TestMain(m *testing.M) {
	if os.Getenv("HARNESS_FAKE_PLUGIN") == "1" {
		serveFake()
		return
	}
	os.Exit(m.Run())
}

func launchFake(t *testing.T) *Host {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("HARNESS_FAKE_PLUGIN", "1")
	h, err := Launch(Options{PluginPath: exe, FingerprintTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if !h.Exited() {
			h.Kill()
		}
	})
	return h
}

func jobFile(t *testing.T, config string) *nomadfile.Task {
	t.Helper()
	p := filepath.Join(t.TempDir(), "job.nomad")
	src := `job "j" {
  group "g" {
    task "t" {
      driver = "fake"
      kill_timeout = "3s"
      env {
        WHERE = "${NOMAD_TASK_DIR}/x"
      }
      config {
` + config + `
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
	return job
}

func TestLaunchSequence(t *testing.T) {
	h := launchFake(t)
	if h.Info.GetName() != "fake" || h.APIVersion != "0.1.0" || h.Caps == nil || h.TaskSpec == nil {
		t.Fatalf("setup incomplete: %+v", h.Info)
	}
	first, _, n, _ := h.Fingerprints()
	if first == nil || n < 1 {
		t.Fatal("no fingerprint recorded")
	}
}

func TestTaskExitCodeLogsAndEnv(t *testing.T) {
	h := launchFake(t)
	job := jobFile(t, `image = "x"
exit_code = 42
lines = ["hello", "${NOMAD_TASK_NAME}"]`)
	task, err := h.PrepareTask(job, t.TempDir(), "")
	if err != nil {
		t.Fatal(err)
	}
	if task.Config.Env["WHERE"] != "/local/x" || task.Config.Env["NOMAD_TASK_DIR"] != "/local" {
		t.Fatalf("env = %v", task.Config.Env)
	}
	if !strings.HasPrefix(task.ID(), task.Config.GetAllocId()+"/t/") || len(task.ID()) != len(task.Config.GetAllocId())+3+8 {
		t.Fatalf("task id = %q", task.ID())
	}
	if err := h.Start(task); err != nil {
		t.Fatal(err)
	}
	w, err := h.Wait(task.ID(), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if w.Result.GetExitCode() != 42 {
		t.Fatalf("exit code = %d", w.Result.GetExitCode())
	}
	if err := h.Destroy(task, true); err != nil {
		t.Fatal(err)
	}
	out, _ := os.ReadFile(task.Paths.StdoutFile)
	if string(out) != "hello\nt\n" {
		t.Fatalf("stdout log = %q", out)
	}
}

func TestStopUsesJobKillTimeout(t *testing.T) {
	h := launchFake(t)
	task, err := h.PrepareTask(jobFile(t, `image = "x"
run_for = "1h"`), t.TempDir(), "")
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Start(task); err != nil {
		t.Fatal(err)
	}
	if got := h.KillTimeout(task); got != 3*time.Second {
		t.Fatalf("kill timeout = %s", got)
	}
	done := make(chan *WaitResult, 1)
	go func() {
		w, _ := h.Wait(task.ID(), 0)
		done <- w
	}()
	if err := h.Stop(task, -1, "SIGINT"); err != nil {
		t.Fatal(err)
	}
	w := <-done
	if w == nil || w.Result.GetSignal() != 2 {
		t.Fatalf("wait = %+v", w)
	}
}

func TestRefusals(t *testing.T) {
	h := launchFake(t)
	_, err := h.PrepareTask(jobFile(t, `image = "x"
bogus = 1`), t.TempDir(), "")
	var se *StageError
	if err == nil || !strings.Contains(err.Error(), "bogus") {
		t.Fatalf("want validation error naming bogus, got %v", err)
	}
	if se, _ = err.(*StageError); se == nil || !se.Refused || se.Stage != "validate" {
		t.Fatalf("want a validate refusal, got %#v", err)
	}

	task, err := h.PrepareTask(jobFile(t, `image = "missing"`), t.TempDir(), "")
	if err != nil {
		t.Fatal(err)
	}
	err = h.Start(task)
	if se, _ = err.(*StageError); se == nil || se.Stage != "start_task" || se.Code != "FailedPrecondition" || !strings.Contains(se.Err.Error(), "image missing") {
		t.Fatalf("want start_task refusal, got %#v", err)
	}
	if _, err := h.Wait("nope", time.Second); err == nil {
		t.Fatal("unknown task id must fail")
	}
}

func TestCrashIsObserved(t *testing.T) {
	h := launchFake(t)
	if err := h.Crash(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if !h.Exited() {
		t.Fatal("plugin should have exited")
	}
	if err := syscall.Kill(h.Inst.Pid, 0); err == nil {
		t.Fatal("plugin process still exists")
	}
}
