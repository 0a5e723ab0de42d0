package agent_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"maps"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/trustbound/trustbound/agent"
	"github.com/trustbound/trustbound/attest/formats"
	"github.com/trustbound/trustbound/coordinator"
	"github.com/trustbound/trustbound/keybroker"
	"github.com/trustbound/trustbound/manifest"
	"github.com/trustbound/trustbound/store"
)

// testCoordinator is a real coordinator (bbolt store in a temp dir, real
// verifiers) behind a loopback TLS server, with the sample manifest
// (edited) in force. It needs no *testing.T, so that examples use it.
type testCoordinator struct {
	srv    *httptest.Server
	roots  *x509.CertPool // the coordinator's TLS CA
	m      *manifest.Manifest
	broker *keybroker.Broker
	owner  agent.Owner
	close  func()
}

const (
	testCoordinatorBootstrap = "bootstrap-token-of-the-example"
	testKeyReleaseBearer     = "key-release-access-token-of-the-test"
)

func startCoordinator(edit func(*manifest.Manifest)) (_ *testCoordinator, err error) {
	dir, err := os.MkdirTemp("", "trustbound-coordinator-")
	if err != nil {
		return nil, err
	}
	var closers []func()
	cleanup := func() {
		for _, c := range slices.Backward(closers) {
			c()
		}
		os.RemoveAll(dir)
	}
	defer func() {
		if err != nil {
			cleanup()
		}
	}()
	st, err := store.OpenBolt(filepath.Join(dir, "store.db"), store.BoltOptions{})
	if err != nil {
		return nil, err
	}
	closers = append(closers, func() { st.Close() })
	key := make([]byte, keybroker.DataKeySize)
	rand.Read(key)
	sealer, err := keybroker.NewSealer(key)
	if err != nil {
		return nil, err
	}
	reg, err := formats.Registry(formats.Config{})
	if err != nil {
		return nil, err
	}
	c, err := coordinator.New(context.Background(), coordinator.Config{Store: st, Sealer: sealer, Verifiers: reg,
		Issuer: "https://coordinator.test", BootstrapToken: []byte(testCoordinatorBootstrap),
		KeyReleaseBearer: []byte(testKeyReleaseBearer), AzureAllowSimulated: true})
	if err != nil {
		return nil, err
	}
	srv := httptest.NewTLSServer(c.Handler())
	closers = append(closers, srv.Close)
	ok, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKIXPublicKey(&ok.PublicKey)
	if err != nil {
		return nil, err
	}
	m, err := manifest.Parse(manifest.SampleWith(string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))))
	if err != nil {
		return nil, err
	}
	if edit != nil {
		edit(m)
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	roots := x509.NewCertPool()
	roots.AddCert(srv.Certificate())
	tc := &testCoordinator{srv: srv, roots: roots, m: m, broker: keybroker.New(st, sealer),
		owner: agent.Owner{Name: m.Owners[0].Name, Key: ok}, close: cleanup}
	if _, err := tc.client().SetManifest(context.Background(), tc.owner, raw, []byte(testCoordinatorBootstrap)); err != nil {
		return nil, fmt.Errorf("setting the manifest: %w", err)
	}
	return tc, nil
}

func (tc *testCoordinator) client() *agent.Client {
	return agent.NewClient(tc.srv.URL, tc.srv.Client())
}

// stored is the current value of secret name in the coordinator's store.
func (tc *testCoordinator) stored(name string) ([]byte, error) {
	i := slices.IndexFunc(tc.m.Secrets, func(s manifest.Secret) bool { return s.Name == name })
	if i < 0 {
		return nil, fmt.Errorf("no secret %q", name)
	}
	_, v, err := tc.broker.Current(context.Background(), tc.m.Secrets[i], nil, time.Now())
	return v, err
}

// simulated is the sample manifest's SIMULATED TEE for workload.
func (tc *testCoordinator) simulated(workload string) (*manifest.Workload, error) {
	w, ok := tc.m.Workload(workload)
	if !ok {
		return nil, errors.New("no workload " + workload)
	}
	return w, nil
}

// An enclave application calls Start when it begins: its keys are made
// inside the enclave, its secrets and certificate arrive in memory, and
// nothing is written to disk. Here the enclave is a SIMULATED SGX enclave
// measuring what the sample manifest's "signer" workload pins.
func Example() {
	coord, err := startCoordinator(nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer coord.close()
	w, err := coord.simulated(manifest.SampleSignerName)
	if err != nil {
		fmt.Println(err)
		return
	}
	enclave, err := agent.SimulatedFor(*w) // on hardware: the enclave's own attester
	if err != nil {
		fmt.Println(err)
		return
	}

	sess, err := agent.Start(context.Background(), agent.Config{
		Coordinator: coord.srv.URL,
		Roots:       coord.roots, // the coordinator's CA, shipped with the enclave
		Workload:    manifest.SampleSignerName,
		TEE:         enclave,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer sess.Close() // zeroes the secrets

	fmt.Println("attested as", sess.SPIFFEID, "simulated:", sess.Simulated)
	for _, name := range slices.Sorted(maps.Keys(sess.Secrets)) {
		blk, _ := pem.Decode(sess.Secrets[name])
		fmt.Printf("secret %s: %s\n", name, blk.Type)
	}
	leaf := sess.Certificate.Leaf
	fmt.Println("certificate for", leaf.URIs[0], "with the enclave's key:", leaf.PublicKey.(*ecdsa.PublicKey).Equal(sess.Certificate.PrivateKey.(*ecdsa.PrivateKey).Public()))
	_, err = leaf.Verify(x509.VerifyOptions{Roots: sess.Roots, Intermediates: intermediates(sess), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	fmt.Println("chains to the trust bundle:", err == nil)
	// Output:
	// attested as spiffe://quickstart.trustbound.local/enclave/signer simulated: true
	// secret signing-key: PRIVATE KEY
	// certificate for spiffe://quickstart.trustbound.local/enclave/signer with the enclave's key: true
	// chains to the trust bundle: true
}

func intermediates(s *agent.Session) *x509.CertPool {
	pool := x509.NewCertPool()
	for _, der := range s.Certificate.Certificate[1:] {
		c, err := x509.ParseCertificate(der)
		if err == nil {
			pool.AddCert(c)
		}
	}
	return pool
}
