package bench

import (
	"bufio"
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/trustbound/trustbound/coordinator"
)

// The coordinator under measurement can run in a child process, so that
// its CPU time and memory are its own: the clients and the harness stay in
// this process, and the child's CPU is read from /proc/<pid>/stat and
// /proc/<pid>/task/*/schedstat around each concurrency level.
//
// Protocol, one JSON value or word per line:
//
//	parent → child stdin:  {"dir": …, "dataKey": …}   (childConfig)
//	child  → parent:       {"url": …, "ca": …, …}      (childHello)
//	parent → child:        "settle" | "peek"           (repeated)
//	child  → parent:       {"rssMiB": …, …}            (childMemory)
//	parent closes stdin:   the child shuts its server and store and exits.

// ChildEnv is set to "1" in the environment of the child coordinator
// process, so that a test binary (whose os.Executable is not the
// trustbound command) can dispatch to ServeCoordinator from TestMain.
const ChildEnv = "TRUSTBOUND_BENCH_COORDINATOR"

// maxChildLine bounds one protocol line either way.
const maxChildLine = 1 << 20

// childConfig is what the parent tells the child: the store directory
// (store.db inside it) and the store's data key.
type childConfig struct {
	Dir     string `json:"dir"`
	DataKey []byte `json:"dataKey"`
}

// childHello is the child's first line: where it serves, the server's
// certificate (PEM), and its memory before it opened the coordinator.
type childHello struct {
	URL            string  `json:"url"`
	CA             string  `json:"ca"`
	BaselineRSSMiB float64 `json:"baselineRssMiB"`
	// PeakReset says whether VmHWM was reset after the baseline.
	PeakReset bool `json:"peakReset"`
}

// childMemory answers "settle" (after runtime.GC and debug.FreeOSMemory)
// and "peek" (as is).
type childMemory struct {
	RSSMiB  float64 `json:"rssMiB"`
	HWMMiB  float64 `json:"hwmMiB"`
	HeapMiB float64 `json:"heapMiB"`
}

// ServeCoordinator is the child process's side: it reads a configuration
// line from in, opens the bench coordinator on that store behind a
// loopback HTTPS server, writes where it serves to out, then answers
// memory requests until in is closed, and shuts down.
func ServeCoordinator(ctx context.Context, in io.Reader, out io.Writer) error {
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 0, 4096), maxChildLine)
	if !sc.Scan() {
		return fmt.Errorf("bench coordinator: no configuration line on stdin (%v)", sc.Err())
	}
	var cfg childConfig
	if err := json.Unmarshal(sc.Bytes(), &cfg); err != nil {
		return fmt.Errorf("bench coordinator: configuration line: %w", err)
	}
	if cfg.Dir == "" {
		return errors.New("bench coordinator: configuration line: dir is empty")
	}
	// The garbage collector as `trustbound serve` sets it.
	coordinator.TuneGC(coordinator.DefaultGCPercent, coordinator.DefaultMemoryLimit)
	settle()
	hello := childHello{}
	hello.BaselineRSSMiB, _ = procStatus()
	hello.PeakReset = resetPeak()
	srv, err := startCoordinator(ctx, cfg.Dir, cfg.DataKey)
	if err != nil {
		return fmt.Errorf("bench coordinator: %w", err)
	}
	defer srv.close()
	hello.URL = srv.srv.URL
	hello.CA = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.srv.Certificate().Raw}))
	enc := json.NewEncoder(out)
	if err := enc.Encode(hello); err != nil {
		return err
	}
	for sc.Scan() {
		switch sc.Text() {
		case "settle":
			settle()
		case "peek":
		default:
			return fmt.Errorf("bench coordinator: unknown request %q", sc.Text())
		}
		var m childMemory
		m.RSSMiB, m.HWMMiB = procStatus()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		m.HeapMiB = float64(ms.HeapInuse) / (1 << 20)
		if err := enc.Encode(m); err != nil {
			return err
		}
	}
	return sc.Err()
}

// childCoordinator is the parent's handle on a running child.
type childCoordinator struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  *bufio.Scanner
	stderr *capBuffer
	hello  childHello
}

// capBuffer keeps the first 64 KiB written to it, for error messages.
type capBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (c *capBuffer) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if room := 64<<10 - c.b.Len(); room > 0 {
		c.b.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

func (c *capBuffer) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return strings.TrimSpace(c.b.String())
}

// startChild runs argv (with ChildEnv=1) as the coordinator on the store
// in dir and waits for it to serve.
func startChild(ctx context.Context, argv []string, dir string, dataKey []byte) (*childCoordinator, error) {
	if len(argv) == 0 {
		return nil, errors.New("bench: no command for the child coordinator")
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), ChildEnv+"=1")
	c := &childCoordinator{cmd: cmd, stderr: &capBuffer{}}
	cmd.Stderr = c.stderr
	var err error
	if c.stdin, err = cmd.StdinPipe(); err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	c.lines = bufio.NewScanner(stdout)
	c.lines.Buffer(make([]byte, 0, 4096), maxChildLine)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("bench: starting the child coordinator %s: %w", argv[0], err)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		c.close()
		return nil, err
	}
	cfg, err := json.Marshal(childConfig{Dir: abs, DataKey: dataKey})
	if err != nil {
		c.close()
		return nil, err
	}
	// A child that hangs before answering is killed.
	timer := time.AfterFunc(time.Minute, func() { _ = cmd.Process.Kill() })
	defer timer.Stop()
	if err := c.request(string(cfg), &c.hello); err != nil {
		c.close()
		return nil, err
	}
	if c.hello.URL == "" || c.hello.CA == "" {
		c.close()
		return nil, errors.New("bench: the child coordinator's first line lacks url or ca")
	}
	return c, nil
}

// request writes one line to the child and reads its one-line answer.
func (c *childCoordinator) request(line string, answer any) error {
	if _, err := io.WriteString(c.stdin, line+"\n"); err != nil {
		return c.failed(fmt.Errorf("writing to it: %w", err))
	}
	if !c.lines.Scan() {
		err := c.lines.Err()
		if err == nil {
			err = io.ErrUnexpectedEOF
		}
		return c.failed(fmt.Errorf("reading its answer: %w", err))
	}
	if err := json.Unmarshal(c.lines.Bytes(), answer); err != nil {
		return c.failed(fmt.Errorf("its answer: %w", err))
	}
	return nil
}

func (c *childCoordinator) failed(err error) error {
	if s := c.stderr.String(); s != "" {
		return fmt.Errorf("bench: child coordinator: %w (its stderr: %s)", err, s)
	}
	return fmt.Errorf("bench: child coordinator: %w", err)
}

// memory asks the child for its memory, after collecting garbage if
// settle.
func (c *childCoordinator) memory(settle bool) (childMemory, error) {
	var m childMemory
	req := "peek"
	if settle {
		req = "settle"
	}
	return m, c.request(req, &m)
}

// roots is a pool holding the child server's certificate.
func (c *childCoordinator) roots() (*x509.CertPool, error) {
	blk, _ := pem.Decode([]byte(c.hello.CA))
	if blk == nil {
		return nil, errors.New("bench: the child coordinator's ca is not PEM")
	}
	cert, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("bench: the child coordinator's ca: %w", err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return pool, nil
}

// close ends the child: stdin closed, then killed if it has not exited
// within ten seconds.
func (c *childCoordinator) close() {
	_ = c.stdin.Close()
	timer := time.AfterFunc(10*time.Second, func() { _ = c.cmd.Process.Kill() })
	defer timer.Stop()
	_ = c.cmd.Wait()
}

// ClockTicks is USER_HZ, the unit of utime and stime in /proc/<pid>/stat:
// 100 on every Linux architecture Go supports (sysconf(_SC_CLK_TCK)).
const ClockTicks = 100

// cpuSample is one reading of a process's CPU time.
type cpuSample struct {
	// ticks is utime+stime of the whole thread group, exited threads
	// included (/proc/<pid>/stat), in 1/ClockTicks s.
	ticks int64
	// threads is each live thread's time on CPU in ns
	// (/proc/<pid>/task/<tid>/schedstat).
	threads map[int]int64
}

// readCPU reads pid's CPU time from /proc.
func readCPU(pid int) (cpuSample, error) {
	base := "/proc/" + strconv.Itoa(pid)
	b, err := os.ReadFile(base + "/stat")
	if err != nil {
		return cpuSample{}, err
	}
	ticks, err := parseProcStat(b)
	if err != nil {
		return cpuSample{}, fmt.Errorf("%s/stat: %w", base, err)
	}
	s := cpuSample{ticks: ticks, threads: map[int]int64{}}
	tasks, err := os.ReadDir(base + "/task")
	if err != nil {
		return s, nil // the ticks alone
	}
	for _, t := range tasks {
		tid, err := strconv.Atoi(t.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(base + "/task/" + t.Name() + "/schedstat")
		if err != nil {
			continue // exited since the listing: cpuBetween falls back to ticks
		}
		if ns, err := parseSchedstat(b); err == nil {
			s.threads[tid] = ns
		}
	}
	return s, nil
}

// cpuBetween is the CPU time spent between two readings: in ns from the
// threads' schedstat when every thread of a is still there in b (Go
// rarely ends a thread), else from the ticks of /proc/<pid>/stat. source
// says which.
func cpuBetween(a, b cpuSample) (d time.Duration, source string) {
	exact := len(a.threads) > 0
	var ns int64
	for tid, before := range a.threads {
		after, ok := b.threads[tid]
		if !ok || after < before {
			exact = false
			break
		}
		ns += after - before
	}
	if exact {
		for tid, after := range b.threads {
			if _, ok := a.threads[tid]; !ok {
				ns += after
			}
		}
		return time.Duration(ns), "schedstat"
	}
	return time.Duration((b.ticks - a.ticks) * int64(time.Second/ClockTicks)), "stat"
}

// parseProcStat returns utime+stime (fields 14 and 15) of a
// /proc/<pid>/stat line. The command name (field 2) is in parentheses and
// may itself hold spaces and parentheses, so the fields are counted from
// the last ')'.
func parseProcStat(b []byte) (int64, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("no ')' closing the command name")
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state), so utime (14) is f[11] and stime (15) f[12].
	if len(f) < 13 {
		return 0, fmt.Errorf("%d fields after the command name, want at least 13", len(f))
	}
	u, err := strconv.ParseInt(f[11], 10, 64)
	if err != nil || u < 0 {
		return 0, fmt.Errorf("utime %q is not a count of ticks", f[11])
	}
	s, err := strconv.ParseInt(f[12], 10, 64)
	if err != nil || s < 0 {
		return 0, fmt.Errorf("stime %q is not a count of ticks", f[12])
	}
	if u > 1<<62-s {
		return 0, errors.New("utime+stime overflows")
	}
	return u + s, nil
}

// parseSchedstat returns the first field of a schedstat line: time on CPU
// in ns.
func parseSchedstat(b []byte) (int64, error) {
	f := strings.Fields(string(b))
	if len(f) < 1 {
		return 0, errors.New("schedstat is empty")
	}
	ns, err := strconv.ParseInt(f[0], 10, 64)
	if err != nil || ns < 0 {
		return 0, fmt.Errorf("schedstat %q is not a time in ns", f[0])
	}
	return ns, nil
}
