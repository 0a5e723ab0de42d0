// Command enclave shows an enclave application that uses trustbound's
// agent as a library: at start it attests through agent.Start, receives
// its secrets and X.509-SVID in memory (no file is written), serves mTLS
// to attested peers with that identity, and zeroes its secrets on exit.
//
//	go run ./examples/enclave --coordinator https://127.0.0.1:8443 \
//	    --ca trustbound-data/ca.crt --workload signer --peer spiffe://quickstart.trustbound.local/confidential-container/web
//
// Off SGX hardware it runs in a SIMULATED enclave measuring what the
// sample manifest's "signer" workload pins; the coordinator accepts that
// only under the manifest's allowSimulated. In a real enclave, pass the
// enclave's own attest.Attester instead.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"maps"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"time"

	"github.com/trustbound/trustbound/agent"
	"github.com/trustbound/trustbound/attest/simtee"
	"github.com/trustbound/trustbound/manifest"
)

// maxCA bounds the CA file read at start.
const maxCA = 1 << 20

func main() {
	coordinator := flag.String("coordinator", "https://127.0.0.1:8443", "coordinator URL")
	caFile := flag.String("ca", "", "PEM file of the coordinator's CA (required)")
	workload := flag.String("workload", manifest.SampleSignerName, "workload name in the manifest")
	listen := flag.String("listen", "127.0.0.1:9443", "address of the mTLS service")
	peer := flag.String("peer", "", "SPIFFE ID allowed to call the service (required to serve)")
	flag.Parse()
	if err := run(*coordinator, *caFile, *workload, *listen, *peer); err != nil {
		log.Fatal(err)
	}
}

func run(coordinator, caFile, workload, listen, peer string) error {
	if caFile == "" {
		return errors.New("--ca is required: the enclave only talks to a coordinator whose CA it was given")
	}
	f, err := os.Open(caFile)
	if err != nil {
		return err
	}
	caPEM, err := io.ReadAll(io.LimitReader(f, maxCA))
	f.Close()
	if err != nil {
		return err
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caPEM) {
		return fmt.Errorf("%s: no PEM certificate", caFile)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	sess, err := agent.Start(ctx, agent.Config{Coordinator: coordinator, Roots: roots, Workload: workload, TEE: enclave()})
	if err != nil {
		return err
	}
	defer sess.Close() // zeroes every secret buffer
	fmt.Printf("attested as %s (simulated: %v)\n", sess.SPIFFEID, sess.Simulated)
	for _, name := range slices.Sorted(maps.Keys(sess.Secrets)) {
		fmt.Printf("  secret %s: %d bytes, in memory only\n", name, len(sess.Secrets[name]))
	}
	if peer == "" {
		return nil
	}

	// mTLS with the SVID: the private key never left the enclave.
	srv := &http.Server{
		Addr: listen,
		TLSConfig: &tls.Config{
			Certificates:          []tls.Certificate{sess.Certificate},
			ClientAuth:            tls.RequireAnyClientCert,
			VerifyPeerCertificate: agent.VerifyPeer(sess.Roots, x509.ExtKeyUsageClientAuth, time.Now, peer),
			MinVersion:            tls.VersionTLS13,
		},
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "hello from %s\n", sess.SPIFFEID)
		}),
		ReadHeaderTimeout: 10 * time.Second,
	}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	fmt.Printf("serving mTLS on %s to %s\n", listen, peer)
	if err := srv.ListenAndServeTLS("", ""); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// enclave is the SIMULATED SGX enclave of the sample's "signer" workload.
func enclave() *simtee.SGX {
	return &simtee.SGX{
		MREnclave: manifest.SampleSignerMREnclave,
		MRSigner:  manifest.SampleSignerMRSigner,
		ProductID: manifest.SampleSignerProductID,
		SVN:       uint16(manifest.SampleSignerMinSVN),
	}
}
