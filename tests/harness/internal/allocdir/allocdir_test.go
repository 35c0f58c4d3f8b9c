package allocdir

import (
	"os"
	"testing"
	"time"
)

func TestLogMonCopiesAcrossWriterRestarts(t *testing.T) {
	p := For(t.TempDir(), "web")
	if err := Build(p); err != nil {
		t.Fatal(err)
	}
	if err := Build(p); err != nil { // idempotent: a recovered task reuses the dirs
		t.Fatal(err)
	}
	lm, err := StartLogMon(p)
	if err != nil {
		t.Fatal(err)
	}
	// The driver's side: O_WRONLY|O_NONBLOCK succeeds only when a reader exists.
	for _, line := range []string{"one\n", "two\n"} {
		w, err := os.OpenFile(p.StdoutFIFO, os.O_WRONLY|os.O_APPEND|0x800 /* O_NONBLOCK */, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.WriteString(line); err != nil {
			t.Fatal(err)
		}
		w.Close() // a writer going away (plugin restart) is not the end
	}
	lm.Stop(100 * time.Millisecond)
	got, err := os.ReadFile(p.StdoutFile)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != "one\ntwo\n" {
		t.Fatalf("stdout log = %q", got)
	}
	if st, err := os.Stat(p.StderrFile); err != nil || st.Size() != 0 {
		t.Fatalf("stderr log: %v %v", st, err)
	}
	for _, d := range []string{p.LocalDir, p.SecretsDir, p.SharedDir + "/data", p.TaskDir + "/tmp"} {
		if st, err := os.Stat(d); err != nil || !st.IsDir() {
			t.Errorf("%s missing", d)
		}
	}
}
