package coordinator_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime/pprof"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trustbound/trustbound/agent"
	"github.com/trustbound/trustbound/coordinator"
	"github.com/trustbound/trustbound/manifest"
)

// BenchmarkAttestReleaseServerTLS is BenchmarkAttestReleaseCombined over
// loopback HTTPS, as `trustbound bench` measures it, with every goroutine
// of the server (the accept loop, and the connection goroutines it
// starts, which inherit its labels: TLS records, HTTP, handlers) labelled
// side=server, so that a CPU profile of it can be cut to the coordinator's
// share:
//
//	go test -run '^$' -bench AttestReleaseServerTLS -benchtime 3s \
//	    -cpuprofile cpu.out ./coordinator/
//	go tool pprof -tagfocus side=server -top coordinator.test cpu.out
//
// GC work done by the runtime's own workers is not labelled; allocation
// assists are charged to the goroutine that allocates.
func BenchmarkAttestReleaseServerTLS(b *testing.B) {
	const conc = 16
	st, sealer, reg := newTestState(b)
	ctx := context.Background()
	c, err := coordinator.New(ctx, coordinator.Config{Store: st, Sealer: sealer, Verifiers: reg,
		Issuer: "https://coordinator.test", BootstrapToken: []byte(testBootstrap),
		ChallengeRate: 1e9, ChallengeBurst: 1 << 30, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(c.Handler())
	started := make(chan struct{})
	go pprof.Do(ctx, pprof.Labels("side", "server"), func(context.Context) {
		srv.StartTLS() // the serving goroutine inherits the label
		close(started)
	})
	<-started
	b.Cleanup(srv.Close)
	tr := srv.Client().Transport.(*http.Transport).Clone()
	tr.MaxIdleConns, tr.MaxIdleConnsPerHost, tr.IdleConnTimeout = 2*conc, 2*conc, time.Minute
	b.Cleanup(tr.CloseIdleConnections)
	hc := &http.Client{Transport: tr}
	client := agent.NewClient(srv.URL, hc)
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
	ids := make([]*agent.Identity, conc)
	for i := range conc {
		if ids[i], err = agent.NewIdentity(); err != nil {
			b.Fatal(err)
		}
		if err := roundTripCombined(ctx, client, hc, srv.URL, ids[i], tee(*w), w.Name); err != nil {
			b.Fatal(err)
		}
	}
	var next atomic.Int64
	var failed atomic.Pointer[error]
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for i := range conc {
		wg.Go(func() {
			sim := tee(*w)
			for next.Add(1) <= int64(b.N) {
				if err := roundTripCombined(ctx, client, hc, srv.URL, ids[i], sim, w.Name); err != nil {
					failed.CompareAndSwap(nil, &err)
					return
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if err := failed.Load(); err != nil {
		b.Fatal(*err)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "ops/s")
}
