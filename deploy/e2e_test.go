package deploy_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trustbound/trustbound/agent"
	"github.com/trustbound/trustbound/attest"
	"github.com/trustbound/trustbound/attest/formats"
	"github.com/trustbound/trustbound/attest/simtee"
	"github.com/trustbound/trustbound/coordinator"
	"github.com/trustbound/trustbound/deploy"
	"github.com/trustbound/trustbound/keybroker"
	"github.com/trustbound/trustbound/manifest"
	"github.com/trustbound/trustbound/store"
)

const bootstrap = "bootstrap-token-of-the-deploy-test"

// startCoordinator runs a real coordinator (bbolt store, real verifiers)
// behind an HTTP test server and sets raw as its manifest.
func startCoordinator(t *testing.T, raw []byte, owner *ecdsa.PrivateKey) *agent.Client {
	t.Helper()
	st, err := store.OpenBolt(filepath.Join(t.TempDir(), "store.db"), store.BoltOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	key := make([]byte, keybroker.DataKeySize)
	rand.Read(key)
	sealer, err := keybroker.NewSealer(key)
	if err != nil {
		t.Fatal(err)
	}
	reg, err := formats.Registry(formats.Config{})
	if err != nil {
		t.Fatal(err)
	}
	c, err := coordinator.New(context.Background(), coordinator.Config{Store: st, Sealer: sealer, Verifiers: reg, Now: time.Now, BootstrapToken: []byte(bootstrap)})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(c.Handler())
	t.Cleanup(srv.Close)
	client := agent.NewClient(srv.URL, srv.Client())
	if _, err := client.SetManifest(context.Background(), agent.Owner{Name: manifest.SampleOwner, Key: owner}, raw, []byte(bootstrap)); err != nil {
		t.Fatal(err)
	}
	return client
}

// TestPinnedPolicyAttestsEndToEnd generates the kata deployment of the
// sample's "web" pod, pins the policy's hash in the manifest, and runs a
// real coordinator with that manifest: the hash in the pod's annotation,
// the manifest's hostData and the HOST_DATA of the simulated pod TEE are
// one value, and the pod attests. A TEE launched with the old policy, or
// with the exec-allowing one, is refused.
func TestPinnedPolicyAttestsEndToEnd(t *testing.T) {
	ctx := context.Background()
	ownerKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&ownerKey.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	raw := manifest.SampleWith(string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})))
	m, err := manifest.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	o := deploy.Options{Target: deploy.Kata, Workload: manifest.SampleWebName, Coordinator: testCoordinator,
		CAPEM: readTestdata(t, "coordinator-ca.crt"), Pod: readTestdata(t, "pod-web.yaml")}
	res, err := deploy.Generate(m, o)
	if err != nil {
		t.Fatal(err)
	}
	o.AllowExec = true
	execRes, err := deploy.Generate(m, o)
	if err != nil {
		t.Fatal(err)
	}

	// The annotation carries the policy whose SHA-256 is the hostData.
	_, ann := podOf(t, decodeStrict(t, fileOf(t, res, "kubernetes.yaml")))
	policy, err := base64.StdEncoding.DecodeString(ann[deploy.PolicyAnnotation])
	if err != nil {
		t.Fatal(err)
	}
	annotated := sha256.Sum256(policy)

	pinnedRaw, err := deploy.PinHostData(raw, manifest.SampleWebName, res.HostData)
	if err != nil {
		t.Fatal(err)
	}
	pinned, err := manifest.Parse(pinnedRaw)
	if err != nil {
		t.Fatal(err)
	}
	if err := pinned.Validate(); err != nil {
		t.Fatalf("the pinned manifest is invalid: %v", err)
	}
	web, _ := pinned.Workload(manifest.SampleWebName)
	if !bytes.Equal(web.Reference.HostData, annotated[:]) || !bytes.Equal(web.Reference.HostData, res.HostData) {
		t.Fatalf("manifest hostData %s, annotation's policy hash %x, generated %s", web.Reference.HostData, annotated, res.HostData)
	}
	tee, err := agent.SimulatedFor(*web)
	if err != nil {
		t.Fatal(err)
	}
	snp, ok := tee.(*simtee.SNP)
	if !ok {
		t.Fatalf("simulated TEE is %T, want *simtee.SNP", tee)
	}
	if snp.HostData != annotated {
		t.Fatalf("the simulated pod's HOST_DATA %x is not the annotated policy's hash %x", snp.HostData, annotated)
	}
	// The report itself carries it.
	ev, err := snp.Attest(ctx, [64]byte{})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(ev.Data, annotated[:]) {
		t.Fatal("the simulated SNP report does not carry the policy hash")
	}

	client := startCoordinator(t, pinnedRaw, ownerKey)
	_, got, err := agent.Run(ctx, client, snp, manifest.SampleWebName)
	if err != nil {
		t.Fatalf("the pod launched with the pinned policy is refused: %v", err)
	}
	if !bytes.Equal(got.Claims.HostData, res.HostData) {
		t.Errorf("attested hostData %s, want %s", got.Claims.HostData, res.HostData)
	}

	// A pod launched with the policy the manifest pinned before (the
	// sample's), or with the exec-allowing one, is refused.
	for name, hd := range map[string][]byte{"old policy": manifest.SampleWebHostData[:], "exec allowed": execRes.HostData} {
		other := *snp
		copy(other.HostData[:], hd)
		_, _, err := agent.Run(ctx, client, &other, manifest.SampleWebName)
		if err == nil || !strings.Contains(err.Error(), "host data") {
			t.Errorf("%s: a pod with another policy: %v, want a refusal for its host data", name, err)
		}
	}
}

var _ attest.Attester = (*simtee.SNP)(nil)
