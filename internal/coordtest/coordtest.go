// Package coordtest runs a real coordinator inside a test: a bbolt store
// on the test's temp dir, a fresh data key, the real verifiers, behind an
// httptest server.
package coordtest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/trustbound/trustbound/agent"
	"github.com/trustbound/trustbound/attest"
	"github.com/trustbound/trustbound/attest/formats"
	"github.com/trustbound/trustbound/coordinator"
	"github.com/trustbound/trustbound/keybroker"
	"github.com/trustbound/trustbound/store"
)

// State opens a bbolt store under tb's temp dir (closed at cleanup), a
// sealer under a fresh random data key, and the format registry of the
// real verifiers (formats.Config{}).
func State(tb testing.TB) (store.Store, *keybroker.Sealer, *attest.Registry) {
	tb.Helper()
	st, err := store.OpenBolt(filepath.Join(tb.TempDir(), "store.db"), store.BoltOptions{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	key := make([]byte, keybroker.DataKeySize)
	rand.Read(key)
	sealer, err := keybroker.NewSealer(key)
	if err != nil {
		tb.Fatal(err)
	}
	reg, err := formats.Registry(formats.Config{})
	if err != nil {
		tb.Fatal(err)
	}
	return st, sealer, reg
}

// OwnerKey is a fresh P-256 owner key and its public key as PEM, what a
// manifest's owner entry names (manifest.SampleWith takes it).
func OwnerKey(tb testing.TB) (*ecdsa.PrivateKey, string) {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		tb.Fatal(err)
	}
	return key, string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

// Options vary Start.
type Options struct {
	// Config configures the coordinator. Store, Sealer and Verifiers left
	// nil are State's.
	Config coordinator.Config
	// TLS serves HTTPS with httptest's certificate (Server.Server.Client
	// trusts it); otherwise plain HTTP.
	TLS bool
	// Wrap, if set, stands between the server and the coordinator's
	// handler (to count or refuse requests).
	Wrap func(http.Handler) http.Handler
	// Manifest, if set, is set as the manifest in force, signed by Owner,
	// with Config.BootstrapToken.
	Manifest []byte
	Owner    agent.Owner
}

// Server is a coordinator running for one test.
type Server struct {
	Coordinator *coordinator.Coordinator
	Store       store.Store
	// Server is the httptest server, closed at cleanup: its URL and Client.
	Server *httptest.Server
	// Client is an agent client of Server.
	Client *agent.Client
}

// Start runs a coordinator configured by o behind an httptest server and,
// when o.Manifest is set, sets it.
func Start(tb testing.TB, o Options) *Server {
	tb.Helper()
	cfg := o.Config
	if cfg.Store == nil || cfg.Sealer == nil || cfg.Verifiers == nil {
		st, sealer, reg := State(tb)
		if cfg.Store == nil {
			cfg.Store = st
		}
		if cfg.Sealer == nil {
			cfg.Sealer = sealer
		}
		if cfg.Verifiers == nil {
			cfg.Verifiers = reg
		}
	}
	c, err := coordinator.New(context.Background(), cfg)
	if err != nil {
		tb.Fatal(err)
	}
	var h http.Handler = c.Handler()
	if o.Wrap != nil {
		h = o.Wrap(h)
	}
	srv := httptest.NewUnstartedServer(h)
	if o.TLS {
		srv.StartTLS()
	} else {
		srv.Start()
	}
	tb.Cleanup(srv.Close)
	s := &Server{Coordinator: c, Store: cfg.Store, Server: srv, Client: agent.NewClient(srv.URL, srv.Client())}
	if o.Manifest != nil {
		if _, err := s.Client.SetManifest(context.Background(), o.Owner, o.Manifest, cfg.BootstrapToken); err != nil {
			tb.Fatalf("setting the manifest: %v", err)
		}
	}
	return s
}
