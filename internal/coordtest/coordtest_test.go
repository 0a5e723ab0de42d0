package coordtest_test

import (
	"bytes"
	"context"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/trustbound/trustbound/agent"
	"github.com/trustbound/trustbound/coordinator"
	"github.com/trustbound/trustbound/internal/coordtest"
	"github.com/trustbound/trustbound/manifest"
)

// Start serves over TLS through Wrap and sets the manifest it is given.
func TestStartSetsTheManifest(t *testing.T) {
	key, pub := coordtest.OwnerKey(t)
	raw := manifest.SampleWith(pub)
	owner := agent.Owner{Name: manifest.SampleOwner, Key: key}
	var seen atomic.Int64
	s := coordtest.Start(t, coordtest.Options{
		Config: coordinator.Config{BootstrapToken: []byte("bootstrap-token-of-the-coordtest-test")},
		TLS:    true,
		Wrap: func(h http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { seen.Add(1); h.ServeHTTP(w, r) })
		},
		Manifest: raw, Owner: owner,
	})
	if s.Server.TLS == nil {
		t.Fatal("Start with TLS serves plain HTTP")
	}
	before := seen.Load()
	if before == 0 {
		t.Fatal("setting the manifest did not pass through Wrap")
	}
	got, err := s.Client.Manifest(context.Background(), owner)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Raw, raw) {
		t.Fatalf("manifest in force is %d bytes %.40q…, want the %d bytes set", len(got.Raw), got.Raw, len(raw))
	}
	if seen.Load() <= before {
		t.Fatal("a request after Start did not pass through Wrap")
	}
}
