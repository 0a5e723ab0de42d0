package coordinator_test

import (
	"context"
	"net/http/httptest"
	"runtime/pprof"
	"testing"
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
	client, w := benchCoordinator(b, conc, func(srv *httptest.Server) {
		started := make(chan struct{})
		go pprof.Do(context.Background(), pprof.Labels("side", "server"), func(context.Context) {
			srv.StartTLS() // the serving goroutine inherits the label
			close(started)
		})
		<-started
	})
	benchRoundTrips(b, client, w, conc, roundTripCombined)
}
