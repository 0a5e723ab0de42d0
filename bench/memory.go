package bench

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/trustbound/trustbound/agent"
	"github.com/trustbound/trustbound/api"
	"github.com/trustbound/trustbound/keybroker"
	"github.com/trustbound/trustbound/manifest"
	"github.com/trustbound/trustbound/store"
)

// MemoryResult is the coordinator's memory with a large manifest and
// audit trail. Sizes are after runtime.GC and debug.FreeOSMemory, from
// /proc/self/status of the process that holds the coordinator: a child
// process holding only the coordinator and its loopback server when
// Options.Coordinator is set, else this whole process (coordinator,
// loopback server, clients and harness).
type MemoryResult struct {
	// Process says which process was measured.
	Process string `json:"process"`
	// WorkloadsAsked is the manifest size asked for; Workloads how many
	// fit in manifest.MaxSize (1 MiB) and were measured; ManifestBytes
	// the manifest's size.
	WorkloadsAsked int `json:"workloadsAsked"`
	Workloads      int `json:"workloads"`
	ManifestBytes  int `json:"manifestBytes"`
	Releases       int `json:"releases"`
	// Attested is how many distinct workloads attested and were released
	// to through HTTPS while the coordinator held that state.
	Attested int `json:"attested"`
	// BaselineRSSMiB is the process before the coordinator was opened on
	// the populated store.
	BaselineRSSMiB float64 `json:"baselineRssMiB"`
	// RSSMiB is after opening it, the round trips and a status read;
	// HeapMiB the Go heap in use then.
	RSSMiB  float64 `json:"rssMiB"`
	HeapMiB float64 `json:"heapMiB"`
	// PeakRSSMiB is VmHWM since the baseline (reset through
	// /proc/self/clear_refs; 0 if the kernel refused), audit read included.
	PeakRSSMiB float64 `json:"peakRssMiB"`
	// AuditReadMs is one owner read of the whole audit trail
	// (GET /v1/audit) and AuditRecords what it returned.
	AuditReadMs  float64 `json:"auditReadMs"`
	AuditRecords int     `json:"auditRecords"`
	// AuditReadError is why the read failed ("" if it did not).
	AuditReadError string `json:"auditReadError,omitempty"`
	// AuditPages is the number of GET /v1/audit pages the read took.
	AuditPages int `json:"auditPages"`
	// StoreMiB is the bbolt file's size on disk.
	StoreMiB float64 `json:"storeMiB"`
	// PopulateSeconds is how long writing the state took (not part of any
	// figure).
	PopulateSeconds float64 `json:"populateSeconds"`
}

// procStatus returns VmRSS and VmHWM of this process in MiB.
func procStatus() (rss, hwm float64) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, 0
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 {
			continue
		}
		kb, err := strconv.ParseFloat(f[1], 64)
		if err != nil {
			continue
		}
		switch f[0] {
		case "VmRSS:":
			rss = kb / 1024
		case "VmHWM:":
			hwm = kb / 1024
		}
	}
	return rss, hwm
}

// settle collects garbage and returns freed memory to the kernel.
func settle() {
	runtime.GC()
	debug.FreeOSMemory()
}

// resetPeak resets VmHWM (Linux ≥ 4.0); false if it could not.
func resetPeak() bool {
	return os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil
}

// batchingStore buffers the audit records keybroker writes and applies
// them in large transactions, so that populating 100,000 releases does not
// take 100,000 fsyncs. Used only to write the benchmark's state; the
// coordinator under measurement runs on the plain store.
type batchingStore struct {
	store.Store
	mu  sync.Mutex
	buf []store.Op
}

func (b *batchingStore) Apply(ctx context.Context, ops ...store.Op) (int64, error) {
	audit := len(ops) > 0
	for _, op := range ops {
		audit = audit && !op.Check && strings.HasPrefix(op.Key, "audit/")
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if audit {
		b.buf = append(b.buf, ops...)
		if len(b.buf) < 5000 {
			return 0, nil
		}
		return b.flushLocked(ctx)
	}
	if _, err := b.flushLocked(ctx); err != nil {
		return 0, err
	}
	return b.Store.Apply(ctx, ops...)
}

func (b *batchingStore) flushLocked(ctx context.Context) (int64, error) {
	if len(b.buf) == 0 {
		return 0, nil
	}
	rev, err := b.Store.Apply(ctx, b.buf...)
	b.buf = b.buf[:0]
	return rev, err
}

// bigManifest is n workloads, each pinned to the sample ledger VM's
// measurement alone (the smallest SEV-SNP confidential VM the validator
// accepts), with one symmetric secret granted to all, owned by pub. When n
// such workloads do not fit in manifest.MaxSize, it returns as many as do.
func bigManifest(n int, pub string) (*manifest.Manifest, []byte, error) {
	sample, err := manifest.Parse(manifest.SampleWith(pub))
	if err != nil {
		return nil, nil, err
	}
	ledger, _ := sample.Workload(manifest.SampleLedgerName)
	var secret manifest.Secret
	for _, s := range sample.Secrets {
		if s.Name == "disk-key" {
			secret = s
		}
	}
	for {
		m := &manifest.Manifest{Version: sample.Version, TrustDomain: sample.TrustDomain, AllowSimulated: true, Owners: sample.Owners}
		sec := secret
		sec.GrantedTo = nil
		for i := range n {
			w := manifest.Workload{Name: fmt.Sprintf("w%05d", i), Model: ledger.Model, TEE: ledger.TEE,
				Reference: manifest.Reference{Measurements: ledger.Reference.Measurements}}
			m.Workloads = append(m.Workloads, w)
			sec.GrantedTo = append(sec.GrantedTo, w.Name)
		}
		m.Secrets = []manifest.Secret{sec}
		raw, err := json.Marshal(m)
		if err != nil {
			return nil, nil, err
		}
		if len(raw) > manifest.MaxSize {
			n = int(float64(n) * float64(manifest.MaxSize) / float64(len(raw)) * 0.99)
			continue
		}
		if err := m.Validate(); err != nil {
			return nil, nil, err
		}
		return m, raw, nil
	}
}

// What MemoryResult.Process says.
const (
	memChild   = "child process: the coordinator and its loopback HTTPS server alone"
	memProcess = "this process: coordinator, loopback HTTPS server, clients and harness"
)

func runMemory(ctx context.Context, dir string, workloads, releases, attested int, childArgv []string) (*MemoryResult, error) {
	res := &MemoryResult{WorkloadsAsked: workloads, Releases: releases, Attested: attested}
	populated := time.Now()
	key := make([]byte, keybroker.DataKeySize)
	_, _ = rand.Read(key)
	k, pub, err := ownerKey()
	if err != nil {
		return nil, err
	}
	m, raw, err := bigManifest(workloads, pub)
	if err != nil {
		return nil, err
	}
	res.Workloads, res.ManifestBytes = len(m.Workloads), len(raw)
	if err := populate(ctx, dir, key, m, raw, releases); err != nil {
		return nil, err
	}
	res.PopulateSeconds = time.Since(populated).Seconds()

	// mem is the coordinator's process's memory (after GC if settled).
	var mem func(settled bool) (childMemory, error)
	var tb *testbed
	peakOK := false
	if childArgv == nil {
		res.Process = memProcess
		settle()
		res.BaselineRSSMiB, _ = procStatus()
		peakOK = resetPeak()
		if tb, err = openTestbed(ctx, dir, key, 16, nil); err != nil {
			return nil, err
		}
		mem = func(settled bool) (childMemory, error) {
			if settled {
				settle()
			}
			var m childMemory
			m.RSSMiB, m.HWMMiB = procStatus()
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			m.HeapMiB = float64(ms.HeapInuse) / (1 << 20)
			return m, nil
		}
	} else {
		// The child measures its baseline and resets its peak before it
		// opens the coordinator.
		res.Process = memChild
		if tb, err = openTestbed(ctx, dir, key, 16, childArgv); err != nil {
			return nil, err
		}
		res.BaselineRSSMiB, peakOK = tb.child.hello.BaselineRSSMiB, tb.child.hello.PeakReset
		mem = tb.child.memory
	}
	defer tb.close()
	tb.owner = agent.Owner{Name: m.Owners[0].Name, Key: k}
	if err := attestMany(ctx, tb, m, attested); err != nil {
		return nil, err
	}
	st, err := tb.client.Status(ctx, tb.owner)
	if err != nil {
		return nil, err
	}
	if len(st.Workloads) != res.Workloads {
		return nil, fmt.Errorf("bench: status lists %d workloads, want %d", len(st.Workloads), res.Workloads)
	}
	st = nil
	settled, err := mem(true)
	if err != nil {
		return nil, err
	}
	res.RSSMiB, res.HeapMiB = settled.RSSMiB, settled.HeapMiB
	t0 := time.Now()
	// The trail is read in pages, as `trustbound audit` reads it.
	n, pages, err := auditAll(ctx, tb)
	res.AuditReadMs = float64(time.Since(t0)) / 1e6
	if err != nil {
		res.AuditReadError = err.Error()
	}
	res.AuditRecords, res.AuditPages = n, pages
	if peakOK {
		after, err := mem(false)
		if err != nil {
			return nil, err
		}
		res.PeakRSSMiB = after.HWMMiB
	}
	if fi, err := os.Stat(filepath.Join(dir, "store.db")); err == nil {
		res.StoreMiB = float64(fi.Size()) / (1 << 20)
	}
	return res, nil
}

// auditAll reads the whole audit trail as an owner, page by page (GET
// /v1/audit?after=&limit=, api.MaxAuditLimit records a page), as
// `trustbound audit` does, and returns the records and pages read.
func auditAll(ctx context.Context, tb *testbed) (records, pages int, err error) {
	cursor := ""
	for {
		ch, err := tb.client.Challenge(ctx)
		if err != nil {
			return records, pages, err
		}
		q := url.Values{"after": {cursor}, "limit": {strconv.Itoa(api.MaxAuditLimit)}}
		target := api.PathAudit + "?" + q.Encode() // the signature covers the query
		auth, err := api.SignOwner(tb.owner.Name, tb.owner.Key, http.MethodGet, target, ch.Nonce, nil)
		if err != nil {
			return records, pages, err
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, tb.url+target, nil)
		if err != nil {
			return records, pages, err
		}
		req.Header.Set("Authorization", auth)
		resp, err := tb.hc.Do(req)
		if err != nil {
			return records, pages, err
		}
		var page api.AuditPage
		b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
		resp.Body.Close()
		if err == nil && resp.StatusCode != http.StatusOK {
			err = fmt.Errorf("GET %s: HTTP %d: %s", api.PathAudit, resp.StatusCode, b)
		}
		if err == nil {
			err = json.Unmarshal(b, &page)
		}
		if err != nil {
			return records, pages, err
		}
		records, pages = records+len(page.Records), pages+1
		if page.Next == "" {
			return records, pages, nil
		}
		if page.Next == cursor || len(page.Records) == 0 {
			return records, pages, fmt.Errorf("GET %s: the page after %q does not advance", api.PathAudit, cursor)
		}
		cursor = page.Next
	}
}

// populate writes the manifest as the coordinator keeps it (it is too
// large for PUT /v1/manifest, whose body is bounded by api.MaxBody) and
// records releases through keybroker, as the coordinator does.
func populate(ctx context.Context, dir string, key []byte, m *manifest.Manifest, raw []byte, releases int) error {
	st, err := store.OpenBolt(filepath.Join(dir, "store.db"), store.BoltOptions{})
	if err != nil {
		return err
	}
	defer st.Close()
	state, err := json.Marshal(map[string]any{"raw": raw, "digest": manifest.Digest(raw), "setBy": m.Owners[0].Name, "setAt": time.Now().UTC()})
	if err != nil {
		return err
	}
	if _, err := store.Put(ctx, st, "manifest/current", state, 0); err != nil {
		return err
	}
	sealer, err := keybroker.NewSealer(key)
	if err != nil {
		return err
	}
	bs := &batchingStore{Store: st}
	broker := keybroker.New(bs, sealer)
	_, to, err := keybroker.NewTEEKey()
	if err != nil {
		return err
	}
	secrets := m.Secrets
	var next atomic.Int64
	var firstErr atomic.Pointer[error]
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			var tok [16]byte
			for {
				i := int(next.Add(1)) - 1
				if i >= releases || firstErr.Load() != nil {
					return
				}
				_, _ = rand.Read(tok[:])
				w := m.Workloads[i%len(m.Workloads)].Name
				_, err := broker.Release(ctx, keybroker.ReleaseRequest{
					Record:  keybroker.Release{Workload: w, EvidenceDigest: manifest.Digest(tok[:]), TokenID: hex.EncodeToString(tok[:]), Simulated: true},
					Secrets: secrets, To: to, Now: time.Now(),
				})
				if err != nil {
					firstErr.CompareAndSwap(nil, &err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := firstErr.Load(); err != nil {
		return fmt.Errorf("bench: recording releases: %w", *err)
	}
	bs.mu.Lock()
	defer bs.mu.Unlock()
	_, err = bs.flushLocked(ctx)
	return err
}

// attestMany runs one attest-and-release round trip for each of the first
// n workloads, 16 at a time.
func attestMany(ctx context.Context, tb *testbed, m *manifest.Manifest, n int) error {
	var next atomic.Int64
	var firstErr atomic.Pointer[error]
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n || firstErr.Load() != nil {
					return
				}
				w := m.Workloads[i]
				if err := attestOne(ctx, tb, w); err != nil {
					firstErr.CompareAndSwap(nil, &err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := firstErr.Load(); err != nil {
		return fmt.Errorf("bench: attesting a workload of the large manifest: %w", *err)
	}
	return nil
}

func attestOne(ctx context.Context, tb *testbed, w manifest.Workload) error {
	sim, err := agent.SimulatedFor(w)
	if err != nil {
		return err
	}
	id, err := agent.NewIdentity()
	if err != nil {
		return err
	}
	req, err := id.Evidence(ctx, tb.client, sim, w.Name)
	if err != nil {
		return err
	}
	ar, err := tb.client.Attest(ctx, req)
	if err != nil {
		return err
	}
	rel, err := tb.client.Release(ctx, &api.ReleaseRequest{Token: ar.Token})
	if err != nil {
		return err
	}
	if len(rel.Secrets) != 1 {
		return fmt.Errorf("%s: %d secrets released, want 1", w.Name, len(rel.Secrets))
	}
	return nil
}
