package bench

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/trustbound/trustbound/agent"
	"github.com/trustbound/trustbound/api"
	"github.com/trustbound/trustbound/attest"
	"github.com/trustbound/trustbound/attest/formats"
	"github.com/trustbound/trustbound/coordinator"
	"github.com/trustbound/trustbound/keybroker"
	"github.com/trustbound/trustbound/manifest"
	"github.com/trustbound/trustbound/store"
)

// bootstrap is the bench coordinators' bootstrap token.
const bootstrap = "trustbound-bench-bootstrap-token"

// testbed is a real coordinator (bbolt store on disk, fsync per write, the
// real verifiers of attest/formats) behind a loopback HTTPS server, in this
// process or in a child process, and an owner-authorised client whose
// keep-alive pool fits conns workers.
type testbed struct {
	local  *coordServer      // the coordinator in this process, or nil
	child  *childCoordinator // the coordinator in a child process, or nil
	url    string
	client *agent.Client
	hc     *http.Client // client's, for the routes agent.Client lacks
	tr     *http.Transport
	owner  agent.Owner
}

func (tb *testbed) close() {
	tb.tr.CloseIdleConnections()
	if tb.local != nil {
		tb.local.close()
	}
	if tb.child != nil {
		tb.child.close()
	}
}

// coordServer is the bench coordinator and its loopback HTTPS server.
type coordServer struct {
	st  *store.Bolt
	srv *httptest.Server
}

func (s *coordServer) close() {
	s.srv.Close()
	_ = s.st.Close()
}

// startCoordinator opens (or creates) the store in dir and serves a
// coordinator on it over loopback HTTPS. The challenge rate limit is
// lifted: every worker shares one address.
func startCoordinator(ctx context.Context, dir string, dataKey []byte) (*coordServer, error) {
	st, err := store.OpenBolt(filepath.Join(dir, "store.db"), store.BoltOptions{})
	if err != nil {
		return nil, err
	}
	sealer, err := keybroker.NewSealer(dataKey)
	if err != nil {
		_ = st.Close()
		return nil, err
	}
	reg, err := formats.Registry(formats.Config{})
	if err != nil {
		_ = st.Close()
		return nil, err
	}
	c, err := coordinator.New(ctx, coordinator.Config{Store: st, Sealer: sealer, Verifiers: reg,
		Issuer: "https://coordinator.bench", BootstrapToken: []byte(bootstrap),
		ChallengeRate: 1e9, ChallengeBurst: 1 << 30, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		_ = st.Close()
		return nil, err
	}
	srv := httptest.NewUnstartedServer(c.Handler())
	srv.StartTLS()
	return &coordServer{st: st, srv: srv}, nil
}

// openTestbed serves a coordinator on the store in dir — in a child
// process running childArgv when that is set, else in this process — and
// connects a client to it.
func openTestbed(ctx context.Context, dir string, dataKey []byte, conns int, childArgv []string) (*testbed, error) {
	tb := &testbed{}
	var roots *x509.CertPool
	if childArgv != nil {
		c, err := startChild(ctx, childArgv, dir, dataKey)
		if err != nil {
			return nil, err
		}
		if roots, err = c.roots(); err != nil {
			c.close()
			return nil, err
		}
		tb.child, tb.url = c, c.hello.URL
	} else {
		s, err := startCoordinator(ctx, dir, dataKey)
		if err != nil {
			return nil, err
		}
		roots = x509.NewCertPool()
		roots.AddCert(s.srv.Certificate())
		tb.local, tb.url = s, s.srv.URL
	}
	// As httptest.Server.Client: HTTP/1.1 over TLS, trusting the server.
	tb.tr = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots},
		MaxIdleConns: 2*conns + 4, MaxIdleConnsPerHost: 2*conns + 4, IdleConnTimeout: time.Minute}
	tb.hc = &http.Client{Transport: tb.tr, Timeout: time.Minute}
	tb.client = agent.NewClient(tb.url, tb.hc)
	return tb, nil
}

// ownerKey makes an owner key and its PEM public key.
func ownerKey() (*ecdsa.PrivateKey, string, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, "", err
	}
	der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		return nil, "", err
	}
	return k, string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})), nil
}

// sampleTestbed is a fresh testbed with the sample manifest and its user
// secret set; it returns the ledger-vm workload (simulated SEV-SNP, two
// secrets and a certificate per release).
func sampleTestbed(ctx context.Context, dir string, conns int, childArgv []string) (*testbed, *manifest.Workload, error) {
	key := make([]byte, keybroker.DataKeySize)
	_, _ = rand.Read(key)
	tb, err := openTestbed(ctx, dir, key, conns, childArgv)
	if err != nil {
		return nil, nil, err
	}
	k, pub, err := ownerKey()
	if err != nil {
		tb.close()
		return nil, nil, err
	}
	m, err := manifest.Parse(manifest.SampleWith(pub))
	if err != nil {
		tb.close()
		return nil, nil, err
	}
	raw, err := json.Marshal(m)
	if err != nil {
		tb.close()
		return nil, nil, err
	}
	tb.owner = agent.Owner{Name: m.Owners[0].Name, Key: k}
	if _, err := tb.client.SetManifest(ctx, tb.owner, raw, []byte(bootstrap)); err != nil {
		tb.close()
		return nil, nil, err
	}
	if _, err := tb.client.SetSecret(ctx, tb.owner, "db-password", []byte("benchmark-db-password")); err != nil {
		tb.close()
		return nil, nil, err
	}
	w, _ := m.Workload(manifest.SampleLedgerName)
	return tb, w, nil
}

// roundTrip is one workload's whole path: challenge, evidence from the
// simulated TEE, attest, release, unwrap and certificate check.
func roundTrip(ctx context.Context, client *agent.Client, id *agent.Identity, sim attest.Attester, w string) (*api.ReleaseResponse, error) {
	req, err := id.Evidence(ctx, client, sim, w)
	if err != nil {
		return nil, err
	}
	ar, err := client.Attest(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("attest: %w", err)
	}
	rel, err := client.Release(ctx, &api.ReleaseRequest{Token: ar.Token})
	if err != nil {
		return nil, fmt.Errorf("release: %w", err)
	}
	res, err := id.Open(rel, time.Now())
	if err != nil {
		return nil, err
	}
	if len(res.Secrets) != 2 {
		return nil, fmt.Errorf("%d secrets released, want 2", len(res.Secrets))
	}
	return rel, nil
}

// roundTripCombined is one workload's whole path over the combined route
// (POST /v1/attest-release), as the agent takes it: challenge, evidence
// from the simulated TEE, attest-and-release, open under the one HPKE
// context and certificate check.
func roundTripCombined(ctx context.Context, client *agent.Client, id *agent.Identity, sim attest.Attester, w string) (*api.AttestReleaseResponse, error) {
	req, err := id.Evidence(ctx, client, sim, w)
	if err != nil {
		return nil, err
	}
	ar, err := client.AttestRelease(ctx, &api.AttestReleaseRequest{Workload: req.Workload, Evidence: req.Evidence})
	if err != nil {
		return nil, fmt.Errorf("attest-release: %w", err)
	}
	res, err := id.OpenAttestRelease(ar, time.Now())
	if err != nil {
		return nil, err
	}
	if len(res.Secrets) != 2 {
		return nil, fmt.Errorf("%d secrets released, want 2", len(res.Secrets))
	}
	return ar, nil
}

// roundTripAttestOnly is the same workload's path without the release:
// challenge, evidence, POST /v1/attest (verification, appraisal, token).
// It is the like-for-like baseline of the attest-and-release routes: the
// same clients, TLS connections, HTTP and JSON, and nothing released.
func roundTripAttestOnly(ctx context.Context, client *agent.Client, id *agent.Identity, sim attest.Attester, w string) error {
	req, err := id.Evidence(ctx, client, sim, w)
	if err != nil {
		return err
	}
	ar, err := client.Attest(ctx, req)
	if err != nil {
		return fmt.Errorf("attest: %w", err)
	}
	if ar.Token == "" {
		return errors.New("attest: no token")
	}
	return nil
}

// RoundTripResult is attest-and-release round trips at one concurrency.
type RoundTripResult struct {
	Concurrency int     `json:"concurrency"`
	Ops         int     `json:"ops"`
	Errors      int     `json:"errors"`
	Seconds     float64 `json:"seconds"`
	OpsPerSec   float64 `json:"opsPerSec"`
	P50Ms       float64 `json:"p50Ms"`
	P99Ms       float64 `json:"p99Ms"`
	// CPUPerOpMs is the user+sys CPU of coordinator and clients together
	// per round trip: both processes' with a child coordinator, this
	// process's (getrusage) when they share it.
	CPUPerOpMs float64 `json:"cpuPerOpMs"`
	// ClientCPUPerOpMs is this process's CPU (getrusage) per round trip
	// with a child coordinator: the clients and the harness, measured. 0
	// when the coordinator runs in this process.
	ClientCPUPerOpMs float64 `json:"clientCpuPerOpMs,omitempty"`
	// ServerCPUPerOpMs is the coordinator's CPU per round trip. With a
	// child coordinator it is measured (RoundTrips.CoordinatorCPUExact):
	// the child's CPU time from /proc over the level ÷ round trips; in
	// this process it is estimated as CPUPerOpMs less the clients' own
	// crypto measured alone (RoundTrips.ClientCPUMs), which leaves the
	// clients' HTTP and JSON work and their garbage collection on the
	// coordinator's bill.
	ServerCPUPerOpMs float64 `json:"serverCpuPerOpMs"`
	// ServerCPUSource is where the child's CPU time was read:
	// "schedstat" (/proc/<pid>/task/*/schedstat, ns), "stat"
	// (/proc/<pid>/stat utime+stime, 1/100 s: a thread ended during the
	// level), or "estimate" (no child).
	ServerCPUSource string `json:"serverCpuSource"`
	// CPUOverVerify is ServerCPUPerOpMs over the verification alone.
	CPUOverVerify float64 `json:"cpuOverVerify"`
	// PctOfVerifyBound is OpsPerSec ÷ (cores ÷ verification cost): the
	// throughput as a share of what verification alone allows, with the
	// clients' own work on the same cores.
	PctOfVerifyBound float64 `json:"pctOfVerifyBound"`
	// CoordinatorPctOfVerifyBound is the same share for the coordinator
	// alone (its cores not shared with the clients): verification cost ÷
	// ServerCPUPerOpMs.
	CoordinatorPctOfVerifyBound float64 `json:"coordinatorPctOfVerifyBound"`
	// PctOfAttestOnly is OpsPerSec ÷ the attest-only round trips' at the
	// same concurrency (RoundTrips.AttestOnlyLevels): what releasing costs
	// in throughput, against a baseline over the same HTTPS path. 0 for
	// the attest-only levels themselves.
	PctOfAttestOnly float64 `json:"pctOfAttestOnly,omitempty"`
}

// RoundTrips is the round-trip section.
type RoundTrips struct {
	// VerifyMs is the warm verification of the same simulated SEV-SNP
	// evidence through the format registry, alone.
	VerifyMs float64 `json:"verifyMs"`
	// ClientCPUMs is what each client does besides HTTP per round trip
	// on the combined route (POST /v1/attest-release): mint the simulated
	// report (one ECDSA P-384 signature) and open the release (one HPKE
	// context for both secrets, certificate chain check), measured alone.
	ClientCPUMs float64 `json:"clientCpuMs"`
	Cores       int     `json:"cores"`
	// CoordinatorCPUExact says the coordinator ran in a child process
	// and its CPU per round trip was measured, not estimated;
	// CoordinatorCPUMethod says how, in words.
	CoordinatorCPUExact  bool   `json:"coordinatorCpuExact"`
	CoordinatorCPUMethod string `json:"coordinatorCpuMethod"`
	// Levels are round trips on the combined route: challenge, then
	// attest and release in one request.
	Levels []RoundTripResult `json:"levels"`
	// SeparateClientCPUMs and SeparateLevels are the same for the two
	// requests the agent falls back to against an older coordinator
	// (attest, then release with the token; each secret sealed on its own).
	SeparateClientCPUMs float64           `json:"separateClientCpuMs"`
	SeparateLevels      []RoundTripResult `json:"separateLevels"`
	// AttestOnlyClientCPUMs and AttestOnlyLevels are the like-for-like
	// baseline: the same round trip without the release (challenge, then
	// POST /v1/attest: verification, appraisal and token); its clients'
	// own crypto is the report signature alone.
	AttestOnlyClientCPUMs float64           `json:"attestOnlyClientCpuMs"`
	AttestOnlyLevels      []RoundTripResult `json:"attestOnlyLevels"`
	// Floor is what a combined round trip cannot do without, each step
	// measured alone, and the most of the verification bound it allows.
	Floor *Floor `json:"floor"`
}

// Ways the coordinator's CPU is known.
const (
	methodChild    = "measured: the coordinator runs in a child process; its CPU time is read from /proc/<pid>/task/*/schedstat (ns) or /proc/<pid>/stat (utime+stime) before and after each level"
	methodEstimate = "estimated: the coordinator shares this process with the clients; its CPU is the process's (getrusage) less the clients' own crypto measured alone, so the clients' HTTP/JSON work and GC count as the coordinator's"
)

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func runRoundTrips(ctx context.Context, dir string, t timing, levels []int, perLevel time.Duration, minOps int, childArgv []string) (*RoundTrips, error) {
	out := &RoundTrips{Cores: runtime.GOMAXPROCS(0), CoordinatorCPUMethod: methodEstimate}
	maxConns := slices.Max(levels)
	tb, w, err := sampleTestbed(ctx, dir, maxConns, childArgv)
	if err != nil {
		return nil, err
	}
	defer tb.close()
	if tb.child != nil {
		out.CoordinatorCPUExact, out.CoordinatorCPUMethod = true, methodChild
	}
	sim, err := agent.SimulatedFor(*w)
	if err != nil {
		return nil, err
	}
	// The two baselines: verification alone, and the clients' own work.
	if out.VerifyMs, err = verifyOnly(ctx, t, sim, w.Name); err != nil {
		return nil, err
	}
	id, err := agent.NewIdentity()
	if err != nil {
		return nil, err
	}
	rel, err := roundTrip(ctx, tb.client, id, sim, w.Name)
	if err != nil {
		return nil, err
	}
	both, err := roundTripCombined(ctx, tb.client, id, sim, w.Name)
	if err != nil {
		return nil, err
	}
	rd, err := id.RuntimeData(w.Name, "benchmark-nonce")
	if err != nil {
		return nil, err
	}
	clientCPU := func(open func() error) (float64, error) {
		ns, err := t.measure(func() error {
			if _, err := sim.Attest(ctx, attest.NativeReportData(rd)); err != nil {
				return err
			}
			return open()
		})
		return ns / 1e6, err
	}
	if out.SeparateClientCPUMs, err = clientCPU(func() error { _, err := id.Open(rel, time.Now()); return err }); err != nil {
		return nil, err
	}
	if out.ClientCPUMs, err = clientCPU(func() error { _, err := id.OpenAttestRelease(both, time.Now()); return err }); err != nil {
		return nil, err
	}
	if out.AttestOnlyClientCPUMs, err = clientCPU(func() error { return nil }); err != nil {
		return nil, err
	}
	if out.Floor, err = runFloor(ctx, t, dir, rd, both, out.VerifyMs, out.ClientCPUMs, out.AttestOnlyClientCPUMs); err != nil {
		return nil, fmt.Errorf("floor: %w", err)
	}
	modes := []struct {
		levels    *[]RoundTripResult
		clientCPU float64
		trip      func(ctx context.Context, id *agent.Identity) error
	}{
		{&out.Levels, out.ClientCPUMs, func(ctx context.Context, id *agent.Identity) error {
			_, err := roundTripCombined(ctx, tb.client, id, sim, w.Name)
			return err
		}},
		{&out.SeparateLevels, out.SeparateClientCPUMs, func(ctx context.Context, id *agent.Identity) error {
			_, err := roundTrip(ctx, tb.client, id, sim, w.Name)
			return err
		}},
		{&out.AttestOnlyLevels, out.AttestOnlyClientCPUMs, func(ctx context.Context, id *agent.Identity) error {
			return roundTripAttestOnly(ctx, tb.client, id, sim, w.Name)
		}},
	}
	for _, m := range modes {
		for _, conc := range levels {
			r, err := roundTripLevel(ctx, m.trip, conc, perLevel, minOps, tb.child)
			if err != nil {
				return nil, err
			}
			if tb.child == nil {
				r.ServerCPUPerOpMs, r.ServerCPUSource = max(0, r.CPUPerOpMs-m.clientCPU), "estimate"
			}
			r.CPUOverVerify = r.ServerCPUPerOpMs / out.VerifyMs
			r.PctOfVerifyBound = 100 * r.OpsPerSec / (float64(out.Cores) / (out.VerifyMs / 1e3))
			if r.ServerCPUPerOpMs > 0 {
				r.CoordinatorPctOfVerifyBound = 100 * out.VerifyMs / r.ServerCPUPerOpMs
			}
			*m.levels = append(*m.levels, r)
		}
	}
	for _, levels := range [][]RoundTripResult{out.Levels, out.SeparateLevels} {
		for i := range levels {
			if base := out.AttestOnlyLevels[i]; base.Concurrency == levels[i].Concurrency && base.OpsPerSec > 0 {
				levels[i].PctOfAttestOnly = 100 * levels[i].OpsPerSec / base.OpsPerSec
			}
		}
	}
	return out, nil
}

// verifyOnly is the warm verification of the workload's simulated evidence
// through the format registry, without HTTP, appraisal, token or release.
func verifyOnly(ctx context.Context, t timing, sim attest.Attester, workload string) (float64, error) {
	reg, err := formats.Registry(formats.Config{})
	if err != nil {
		return 0, err
	}
	id, err := agent.NewIdentity()
	if err != nil {
		return 0, err
	}
	rd, err := id.RuntimeData(workload, "benchmark-nonce")
	if err != nil {
		return 0, err
	}
	ev, err := sim.Attest(ctx, attest.NativeReportData(rd))
	if err != nil {
		return 0, err
	}
	ev.RuntimeData = rd
	opts := attest.Options{Now: time.Now(), AllowSimulated: true}
	ns, err := t.measure(func() error { _, err := reg.Verify(ctx, ev, opts); return err })
	return ns / 1e6, err
}

// roundTripLevel runs conc workers, each one workload identity, until at
// least perLevel has passed and minOps round trips were made. With a child
// coordinator, its CPU time over the level is read from /proc.
func roundTripLevel(ctx context.Context, trip func(context.Context, *agent.Identity) error, conc int, perLevel time.Duration, minOps int, child *childCoordinator) (RoundTripResult, error) {
	ids := make([]*agent.Identity, conc)
	for i := range conc {
		id, err := agent.NewIdentity()
		if err != nil {
			return RoundTripResult{}, err
		}
		ids[i] = id
	}
	// Warm-up: one round trip per worker opens its connection.
	var wg sync.WaitGroup
	var warmErr atomic.Pointer[error]
	for i := range conc {
		wg.Go(func() {
			if err := trip(ctx, ids[i]); err != nil {
				warmErr.CompareAndSwap(nil, &err)
			}
		})
	}
	wg.Wait()
	if err := warmErr.Load(); err != nil {
		return RoundTripResult{}, fmt.Errorf("bench: warm-up at c=%d: %w", conc, *err)
	}
	runtime.GC()
	lat := make([][]time.Duration, conc)
	var done, errs atomic.Int64
	var firstErr atomic.Pointer[error]
	var child0 cpuSample
	if child != nil {
		var err error
		if child0, err = readCPU(child.cmd.Process.Pid); err != nil {
			return RoundTripResult{}, fmt.Errorf("bench: the child coordinator's CPU time: %w", err)
		}
	}
	deadline := time.Now().Add(perLevel)
	cpu0, start := cpuTime(), time.Now()
	for i := range conc {
		wg.Go(func() {
			for time.Now().Before(deadline) || done.Load() < int64(minOps) {
				if ctx.Err() != nil {
					return
				}
				t0 := time.Now()
				if err := trip(ctx, ids[i]); err != nil {
					errs.Add(1)
					firstErr.CompareAndSwap(nil, &err)
					if errs.Load() > 100 {
						return
					}
					continue
				}
				lat[i] = append(lat[i], time.Since(t0))
				done.Add(1)
			}
		})
	}
	wg.Wait()
	elapsed, cpu := time.Since(start), cpuTime()-cpu0
	var childCPU time.Duration
	var source string
	if child != nil {
		child1, err := readCPU(child.cmd.Process.Pid)
		if err != nil {
			return RoundTripResult{}, fmt.Errorf("bench: the child coordinator's CPU time: %w", err)
		}
		childCPU, source = cpuBetween(child0, child1)
	}
	if err := ctx.Err(); err != nil {
		return RoundTripResult{}, err
	}
	all := slices.Concat(lat...)
	slices.Sort(all)
	r := RoundTripResult{Concurrency: conc, Ops: len(all), Errors: int(errs.Load()), Seconds: elapsed.Seconds()}
	if len(all) == 0 {
		err := errors.New("no round trip succeeded")
		if e := firstErr.Load(); e != nil {
			err = *e
		}
		return r, fmt.Errorf("bench: c=%d: %w", conc, err)
	}
	pct := func(p float64) float64 { return float64(all[int(p*float64(len(all)-1))]) / 1e6 }
	r.OpsPerSec = float64(len(all)) / elapsed.Seconds()
	r.P50Ms, r.P99Ms = pct(0.50), pct(0.99)
	perOp := func(d time.Duration) float64 { return float64(d) / 1e6 / float64(len(all)) }
	r.CPUPerOpMs = perOp(cpu + childCPU)
	if child != nil {
		r.ClientCPUPerOpMs, r.ServerCPUPerOpMs, r.ServerCPUSource = perOp(cpu), perOp(childCPU), source
	}
	if e := firstErr.Load(); e != nil {
		slog.Default().Warn("bench: round trip failed", "concurrency", conc, "err", *e)
	}
	return r, nil
}
