package agent_test

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"

	"github.com/trustbound/trustbound/agent"
	"github.com/trustbound/trustbound/attest"
	"github.com/trustbound/trustbound/manifest"
)

// Start leaves no file behind: run in an empty working directory (and an
// empty TMPDIR), the session holds its secrets and certificate in memory
// and both directories stay empty. Close zeroes the secret buffers.
func TestStartWritesNoFileAndCloseZeroes(t *testing.T) {
	coord, err := startCoordinator(nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(coord.close)
	cwd, tmp := t.TempDir(), t.TempDir()
	t.Chdir(cwd)
	t.Setenv("TMPDIR", tmp)
	w, _ := coord.simulated(manifest.SampleWebName)
	tee, err := agent.SimulatedFor(*w)
	if err != nil {
		t.Fatal(err)
	}
	sess, err := agent.Start(context.Background(), agent.Config{Coordinator: coord.srv.URL, Roots: coord.roots, Workload: w.Name, TEE: tee})
	if err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{cwd, tmp} {
		if entries, err := os.ReadDir(dir); err != nil || len(entries) != 0 {
			t.Errorf("%s holds %v after Start (%v)", dir, entries, err)
		}
	}
	disk, err := coord.stored("disk-key")
	if err != nil {
		t.Fatal(err)
	}
	got := sess.Secrets["disk-key"]
	if !bytes.Equal(got, disk) || len(sess.Secrets["tls"]) == 0 {
		t.Fatalf("secrets in memory: disk-key matches the store %v, tls %d bytes", bytes.Equal(got, disk), len(sess.Secrets["tls"]))
	}
	if sess.SPIFFEID != "spiffe://"+manifest.SampleTrustDomain+"/confidential-container/web" || sess.Certificate.Leaf == nil || sess.Certificate.PrivateKey == nil {
		t.Errorf("session %s, certificate %v", sess.SPIFFEID, sess.Certificate.Leaf != nil)
	}
	tlsSecret := sess.Secrets["tls"]
	if err := sess.Close(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, make([]byte, len(got))) || !bytes.Equal(tlsSecret, make([]byte, len(tlsSecret))) {
		t.Error("Close left secret bytes in the buffers")
	}
	if len(sess.Secrets) != 0 || sess.Identity() != nil || sess.Certificate.PrivateKey != nil {
		t.Error("Close left secrets or keys reachable from the session")
	}
	if err := sess.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestStartRefusals(t *testing.T) {
	tee, err := agent.SimulatedFor(manifest.Workload{Name: "w", TEE: attest.SGX, Reference: manifest.Reference{Measurements: []attest.Hex{make([]byte, 32)}}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for name, c := range map[string]struct {
		cfg  agent.Config
		want string
	}{
		"plain HTTP": {agent.Config{Coordinator: "http://127.0.0.1:1", Workload: "w", TEE: tee}, "not an https URL"},
		"no roots":   {agent.Config{Coordinator: "https://127.0.0.1:1", Workload: "w", TEE: tee}, "Roots"},
		"no TEE":     {agent.Config{Coordinator: "https://127.0.0.1:1", Workload: "w"}, "TEE"},
		"no name":    {agent.Config{Coordinator: "https://127.0.0.1:1", TEE: tee}, "Workload"},
	} {
		if _, err := agent.Start(ctx, c.cfg); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: want refusal mentioning %q, got %v", name, c.want, err)
		}
	}
}
