package coordinator_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trustbound/trustbound/agent"
	"github.com/trustbound/trustbound/api"
	"github.com/trustbound/trustbound/attest"
	"github.com/trustbound/trustbound/attest/formats"
	"github.com/trustbound/trustbound/coordinator"
	"github.com/trustbound/trustbound/internal/coordtest"
	"github.com/trustbound/trustbound/keybroker"
	"github.com/trustbound/trustbound/manifest"
)

// benchCoordinator runs a real coordinator (bbolt on a temp dir, fsync
// per write, real verifiers) behind a loopback server with the sample
// manifest and its user secret set, and returns a client whose keep-alive
// pool holds enough connections for conns workers. serve starts the
// server (nil: plain HTTP). The challenge rate limit is lifted: every
// worker shares one address.
func benchCoordinator(b *testing.B, conns int, serve func(*httptest.Server)) (*agent.Client, manifest.Workload) {
	b.Helper()
	st, sealer, reg := coordtest.State(b)
	ctx := context.Background()
	c, err := coordinator.New(ctx, coordinator.Config{Store: st, Sealer: sealer, Verifiers: reg,
		Issuer: "https://coordinator.test", BootstrapToken: []byte(testBootstrap),
		ChallengeRate: 1e9, ChallengeBurst: 1 << 30, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(c.Handler())
	if serve == nil {
		srv.Start()
	} else {
		serve(srv)
	}
	b.Cleanup(srv.Close)
	tr := srv.Client().Transport.(*http.Transport).Clone()
	tr.MaxIdleConns, tr.MaxIdleConnsPerHost, tr.IdleConnTimeout = 2*conns, 2*conns, time.Minute
	b.Cleanup(tr.CloseIdleConnections)
	client := agent.NewClient(srv.URL, &http.Client{Transport: tr})
	ownerKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	m, raw := benchManifest(b, &ownerKey.PublicKey)
	owner := agent.Owner{Name: m.Owners[0].Name, Key: ownerKey}
	if _, err := client.SetManifest(ctx, owner, raw, []byte(testBootstrap)); err != nil {
		b.Fatal(err)
	}
	if _, err := client.SetSecret(ctx, owner, "db-password", []byte("benchmark-db-password")); err != nil {
		b.Fatal(err)
	}
	w, _ := m.Workload(manifest.SampleLedgerName)
	return client, *w
}

// roundTripFunc is one workload's round trip by one identity.
type roundTripFunc func(ctx context.Context, client *agent.Client, id *agent.Identity, sim attest.Attester, w string) error

// benchRoundTrips runs b.N round trips of w by conc workers, each with its
// own identity and simulated TEE and warmed by one trip (which opens its
// connection), reports ops/s, and returns every trip's latency, sorted.
func benchRoundTrips(b *testing.B, client *agent.Client, w manifest.Workload, conc int, trip roundTripFunc) []time.Duration {
	b.Helper()
	ctx := context.Background()
	ids := make([]*agent.Identity, conc)
	sims := make([]attest.Attester, conc)
	for i := range conc {
		id, err := agent.NewIdentity()
		if err != nil {
			b.Fatal(err)
		}
		ids[i], sims[i] = id, tee(w)
		if err := trip(ctx, client, ids[i], sims[i], w.Name); err != nil {
			b.Fatal(err)
		}
	}
	lat := make([][]time.Duration, conc)
	var next atomic.Int64
	var failed atomic.Pointer[error]
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for i := range conc {
		wg.Go(func() {
			for next.Add(1) <= int64(b.N) {
				t0 := time.Now()
				if err := trip(ctx, client, ids[i], sims[i], w.Name); err != nil {
					failed.CompareAndSwap(nil, &err)
					return
				}
				lat[i] = append(lat[i], time.Since(t0))
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if err := failed.Load(); err != nil {
		b.Fatal(*err)
	}
	all := slices.Concat(lat...)
	slices.Sort(all)
	b.ReportMetric(float64(len(all))/elapsed.Seconds(), "ops/s")
	return all
}

// benchManifest is the sample manifest owned by pub, parsed and raw.
func benchManifest(b *testing.B, pub *ecdsa.PublicKey) (*manifest.Manifest, []byte) {
	b.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		b.Fatal(err)
	}
	m, err := manifest.Parse(manifest.SampleWith(string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))))
	if err != nil {
		b.Fatal(err)
	}
	raw, err := json.Marshal(m)
	if err != nil {
		b.Fatal(err)
	}
	return m, raw
}

// roundTrip is one workload's whole path: challenge, evidence from the
// simulated SNP TEE, attest, release, unwrap and certificate check.
func roundTrip(ctx context.Context, client *agent.Client, id *agent.Identity, sim attest.Attester, w string) error {
	req, err := id.Evidence(ctx, client, sim, w)
	if err != nil {
		return err
	}
	ar, err := client.Attest(ctx, req)
	if err != nil {
		return fmt.Errorf("attest: %w", err)
	}
	rel, err := client.Release(ctx, &api.ReleaseRequest{Token: ar.Token})
	if err != nil {
		return fmt.Errorf("release: %w", err)
	}
	res, err := id.Open(rel, time.Now())
	if err != nil {
		return err
	}
	if len(res.Secrets) == 0 {
		return fmt.Errorf("no secret released")
	}
	return nil
}

// BenchmarkAttestRelease measures attest-and-release round trips over
// loopback HTTP by a pool of workers (one simulated SEV-SNP VM each,
// keep-alive connections): ops/s, and p50/p99 latency of one round trip.
// Compare with BenchmarkVerifyOnly, the verification inside each.
func BenchmarkAttestRelease(b *testing.B) {
	for _, conc := range []int{1, 16, 128} {
		b.Run(fmt.Sprintf("c=%d", conc), func(b *testing.B) {
			client, w := benchCoordinator(b, conc, nil)
			all := benchRoundTrips(b, client, w, conc, roundTrip)
			pct := func(p float64) float64 {
				return float64(all[int(p*float64(len(all)-1))].Nanoseconds()) / 1e3
			}
			b.ReportMetric(pct(0.50), "p50-µs")
			b.ReportMetric(pct(0.99), "p99-µs")
		})
	}
}

// roundTripCombined is roundTrip over POST /v1/attest-release: challenge,
// evidence, one request, then the secrets opened under one HPKE context.
func roundTripCombined(ctx context.Context, client *agent.Client, id *agent.Identity, sim attest.Attester, w string) error {
	req, err := id.Evidence(ctx, client, sim, w)
	if err != nil {
		return err
	}
	out, err := client.AttestRelease(ctx, &api.AttestReleaseRequest{Workload: w, Evidence: req.Evidence})
	if err != nil {
		return fmt.Errorf("attest-release: %w", err)
	}
	if out.Release.Context == nil || len(out.Release.Secrets) != 2 {
		return fmt.Errorf("release without a context or with %d secrets", len(out.Release.Secrets))
	}
	_, err = keybroker.UnwrapAll(id.HPKE, *out.Release.Context, out.Release.Secrets)
	return err
}

// BenchmarkAttestReleaseCombined is BenchmarkAttestRelease/c=16 over the
// combined route (POST /v1/attest-release).
func BenchmarkAttestReleaseCombined(b *testing.B) {
	const conc = 16
	client, w := benchCoordinator(b, conc, nil)
	benchRoundTrips(b, client, w, conc, roundTripCombined)
}

// BenchmarkVerifyOnly is the verification of the same simulated SEV-SNP
// evidence through the warm format registry, without HTTP, appraisal,
// token, store or wrapping.
func BenchmarkVerifyOnly(b *testing.B) {
	reg, err := formats.Registry(formats.Config{})
	if err != nil {
		b.Fatal(err)
	}
	ownerKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	m, _ := benchManifest(b, &ownerKey.PublicKey)
	w, _ := m.Workload(manifest.SampleLedgerName)
	id, err := agent.NewIdentity()
	if err != nil {
		b.Fatal(err)
	}
	rd, err := id.RuntimeData(w.Name, "benchmark-nonce")
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	ev, err := tee(*w).Attest(ctx, attest.NativeReportData(rd))
	if err != nil {
		b.Fatal(err)
	}
	ev.RuntimeData = rd
	opts := attest.Options{Now: time.Now(), AllowSimulated: true}
	if _, err := reg.Verify(ctx, ev, opts); err != nil { // warm
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := reg.Verify(ctx, ev, opts); err != nil {
			b.Fatal(err)
		}
	}
}
