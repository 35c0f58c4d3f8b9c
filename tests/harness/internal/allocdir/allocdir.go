// Package allocdir builds an allocation directory laid out like the Nomad
// client's, and plays logmon: it reads the task's stdout/stderr FIFOs and
// copies them into alloc/logs/<task>.{stdout,stderr}.0.
package allocdir

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// Paths of one task inside an alloc dir.
type Paths struct {
	AllocDir   string // <root>/<alloc_id>
	SharedDir  string // alloc/
	LogDir     string // alloc/logs
	TaskDir    string // <task>/
	LocalDir   string // <task>/local
	SecretsDir string // <task>/secrets
	StdoutFIFO string // alloc/logs/.<task>.stdout.fifo
	StderrFIFO string
	StdoutFile string // alloc/logs/<task>.stdout.0
	StderrFile string
}

// For returns the paths for task in allocDir without touching the disk.
func For(allocDir, task string) Paths {
	logs := filepath.Join(allocDir, "alloc", "logs")
	return Paths{
		AllocDir:   allocDir,
		SharedDir:  filepath.Join(allocDir, "alloc"),
		LogDir:     logs,
		TaskDir:    filepath.Join(allocDir, task),
		LocalDir:   filepath.Join(allocDir, task, "local"),
		SecretsDir: filepath.Join(allocDir, task, "secrets"),
		StdoutFIFO: filepath.Join(logs, "."+task+".stdout.fifo"),
		StderrFIFO: filepath.Join(logs, "."+task+".stderr.fifo"),
		StdoutFile: filepath.Join(logs, task+".stdout.0"),
		StderrFile: filepath.Join(logs, task+".stderr.0"),
	}
}

// Build creates the directories and FIFOs (existing ones are kept, so a
// recovered task reuses them). Directories the task writes to are world
// writable, as Nomad makes them, so tasks running as another user can use them.
func Build(p Paths) error {
	dirs := []struct {
		path string
		mode os.FileMode
	}{
		{p.AllocDir, 0o755},
		{p.SharedDir, 0o777},
		{p.LogDir, 0o777},
		{filepath.Join(p.SharedDir, "data"), 0o777},
		{filepath.Join(p.SharedDir, "tmp"), 0o777},
		{p.TaskDir, 0o777},
		{p.LocalDir, 0o777},
		{p.SecretsDir, 0o777},
		{filepath.Join(p.TaskDir, "tmp"), 0o777},
	}
	for _, d := range dirs {
		if err := os.MkdirAll(d.path, d.mode); err != nil {
			return err
		}
		if err := os.Chmod(d.path, d.mode); err != nil {
			return err
		}
	}
	for _, f := range []string{p.StdoutFIFO, p.StderrFIFO} {
		if err := syscall.Mkfifo(f, 0o600); err != nil && !errors.Is(err, os.ErrExist) {
			return fmt.Errorf("mkfifo %s: %w", f, err)
		}
	}
	return nil
}

// LogMon copies both FIFOs of a task into its log files until stopped.
type LogMon struct {
	copiers []*copier
}

type copier struct {
	fifo     *os.File
	out      *os.File
	done     chan struct{}
	mu       sync.Mutex
	stopping time.Duration // > 0 once Stop was called: the quiet period
}

// StartLogMon opens the FIFOs read-write (so opening never blocks, a writer
// that goes away and comes back after a plugin restart is not an EOF, and the
// driver can open the write side without ENXIO) and starts copying.
func StartLogMon(p Paths) (*LogMon, error) {
	lm := &LogMon{}
	for _, pair := range [][2]string{{p.StdoutFIFO, p.StdoutFile}, {p.StderrFIFO, p.StderrFile}} {
		fifo, err := os.OpenFile(pair[0], os.O_RDWR, 0)
		if err != nil {
			lm.Stop(0)
			return nil, fmt.Errorf("open %s: %w", pair[0], err)
		}
		out, err := os.OpenFile(pair[1], os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
		if err != nil {
			fifo.Close()
			lm.Stop(0)
			return nil, err
		}
		c := &copier{fifo: fifo, out: out, done: make(chan struct{})}
		go c.run()
		lm.copiers = append(lm.copiers, c)
	}
	return lm, nil
}

func (c *copier) run() {
	defer close(c.done)
	defer c.out.Close()
	defer c.fifo.Close()
	buf := make([]byte, 32*1024)
	for {
		n, err := c.fifo.Read(buf)
		if n > 0 {
			_, _ = c.out.Write(buf[:n])
			c.mu.Lock()
			if c.stopping > 0 {
				_ = c.fifo.SetReadDeadline(time.Now().Add(c.stopping))
			}
			c.mu.Unlock()
		}
		if err != nil {
			// Deadline exceeded after Stop means the driver went quiet.
			return
		}
	}
}

// Stop drains what the driver has written until quiet has passed with no new
// data, then closes everything.
func (lm *LogMon) Stop(quiet time.Duration) {
	if quiet <= 0 {
		quiet = time.Millisecond
	}
	for _, c := range lm.copiers {
		c.mu.Lock()
		c.stopping = quiet
		_ = c.fifo.SetReadDeadline(time.Now().Add(quiet))
		c.mu.Unlock()
	}
	for _, c := range lm.copiers {
		<-c.done
	}
}
