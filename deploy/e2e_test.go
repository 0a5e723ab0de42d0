package deploy_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/trustbound/trustbound/agent"
	"github.com/trustbound/trustbound/attest"
	"github.com/trustbound/trustbound/attest/simtee"
	"github.com/trustbound/trustbound/coordinator"
	"github.com/trustbound/trustbound/deploy"
	"github.com/trustbound/trustbound/initdata"
	"github.com/trustbound/trustbound/internal/coordtest"
	"github.com/trustbound/trustbound/manifest"
)

const bootstrap = "bootstrap-token-of-the-deploy-test"

// startCoordinator runs a real coordinator (bbolt store, real verifiers)
// behind an HTTP test server and sets raw as its manifest.
func startCoordinator(t *testing.T, raw []byte, owner *ecdsa.PrivateKey) *agent.Client {
	t.Helper()
	return coordtest.Start(t, coordtest.Options{
		Config:   coordinator.Config{Now: time.Now, BootstrapToken: []byte(bootstrap)},
		Manifest: raw, Owner: agent.Owner{Name: manifest.SampleOwner, Key: owner},
	}).Client
}

// pinHostData pins workload's host data of res into the manifest raw
// (deploy.PinHostData) and returns the pinned manifest, which must
// validate, parsed and raw.
func pinHostData(t *testing.T, raw []byte, workload string, res *deploy.Result) (*manifest.Manifest, []byte) {
	t.Helper()
	pinnedRaw, err := deploy.PinHostData(raw, workload, res.HostData)
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
	return pinned, pinnedRaw
}

// boundValue is what the generated pod asks its TEE to bind, read back
// from the pod's own annotation: the digest of the init-data document
// (gzip, base64 in cc_init_data) sized to the TEE field.
func boundValue(t *testing.T, res *deploy.Result, tee attest.TEE) []byte {
	t.Helper()
	_, ann := podOf(t, decodeStrict(t, fileOf(t, res, "kubernetes.yaml")))
	v, ok := ann[initdata.AnnotationKey]
	if !ok {
		t.Fatalf("the pod has no %s annotation", initdata.AnnotationKey)
	}
	doc, err := initdata.FromAnnotation(v)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(doc, res.Policy) {
		t.Fatal("the init-data does not hold the policy")
	}
	if tee == attest.TDX {
		h := sha512.Sum384(doc)
		return h[:]
	}
	h := sha256.Sum256(doc)
	return h[:]
}

// TestPinnedHostDataAttestsEndToEnd generates the kata deployment of the
// sample's "web" pod (SNP), pins the generated hostData in the manifest,
// and runs a real coordinator with it: the value the pod's annotation
// makes the TEE bind, the manifest's hostData and the HOST_DATA of the
// simulated pod TEE are one value, and the pod attests. A TEE launched
// with the old value, with the exec-allowing policy, or with the bare
// policy's SHA-256 (what AKS would bind) is refused.
func TestPinnedHostDataAttestsEndToEnd(t *testing.T) {
	ctx := context.Background()
	ownerKey, ownerPEM := coordtest.OwnerKey(t)
	raw := manifest.SampleWith(ownerPEM)
	m, err := manifest.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	gen := func(exec bool) *deploy.Result {
		t.Helper()
		o := deploy.Options{Target: deploy.Kata, Workload: manifest.SampleWebName, Coordinator: testCoordinator,
			CAPEM: readTestdata(t, "coordinator-ca.crt"), Pod: readTestdata(t, "pod-web.yaml"),
			AgentImage: testAgentImage, AllowExec: exec}
		res, err := deploy.Generate(m, o)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	res := gen(false)
	policySum := sha256.Sum256(res.Policy)
	if bytes.Equal(res.HostData, policySum[:]) {
		t.Fatal("hostData is the bare policy's SHA-256, not the init-data digest")
	}
	bound := boundValue(t, res, attest.SEVSNP)
	pinned, pinnedRaw := pinHostData(t, raw, manifest.SampleWebName, res)
	web, _ := pinned.Workload(manifest.SampleWebName)
	if !bytes.Equal(web.Reference.HostData, bound) || !bytes.Equal(web.Reference.HostData, res.HostData) {
		t.Fatalf("manifest hostData %s, bound by the annotation %x, generated %s", web.Reference.HostData, bound, res.HostData)
	}
	tee, err := agent.SimulatedFor(*web)
	if err != nil {
		t.Fatal(err)
	}
	snp, ok := tee.(*simtee.SNP)
	if !ok {
		t.Fatalf("simulated TEE is %T, want *simtee.SNP", tee)
	}
	if !bytes.Equal(snp.HostData[:], bound) {
		t.Fatalf("the simulated pod's HOST_DATA %x is not the bound value %x", snp.HostData, bound)
	}
	ev, err := snp.Attest(ctx, [64]byte{})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(ev.Data, bound) {
		t.Fatal("the simulated SNP report does not carry the bound value")
	}

	client := startCoordinator(t, pinnedRaw, ownerKey)
	_, got, err := agent.Run(ctx, client, snp, manifest.SampleWebName)
	if err != nil {
		t.Fatalf("the pod launched with the pinned value is refused: %v", err)
	}
	if !bytes.Equal(got.Claims.HostData, res.HostData) {
		t.Errorf("attested hostData %s, want %s", got.Claims.HostData, res.HostData)
	}
	for name, hd := range map[string][]byte{
		"old policy":   manifest.SampleWebHostData[:],
		"exec allowed": gen(true).HostData,
		"policy hash":  policySum[:],
	} {
		other := *snp
		copy(other.HostData[:], hd)
		_, _, err := agent.Run(ctx, client, &other, manifest.SampleWebName)
		if err == nil || !strings.Contains(err.Error(), "host data") {
			t.Errorf("%s: a pod with another value: %v, want a refusal for its host data", name, err)
		}
	}
}

// tdxManifest is a manifest with one TDX confidential container, api-td,
// pinned by MRTD, simulation allowed.
func tdxManifest(ownerPEM string, mrtd [48]byte) []byte {
	var b strings.Builder
	b.WriteString("version: 1\ntrustDomain: deploy.trustbound.test\nallowSimulated: true\nowners:\n  - name: " + manifest.SampleOwner + "\n    publicKey: |\n")
	for l := range strings.Lines(strings.TrimSpace(ownerPEM)) {
		b.WriteString("      " + strings.TrimSpace(l) + "\n")
	}
	b.WriteString("workloads:\n  - name: api-td\n    model: confidential-container\n    tee: tdx\n    reference:\n")
	b.WriteString("      hostData: \"\"\n      measurements: [\"" + hex.EncodeToString(mrtd[:]) + "\"]\n")
	return []byte(b.String())
}

// TestPinnedInitDataAttestsOnTDX is the upstream mode on TDX: the SHA-384
// of the init-data document is the 48-byte MRCONFIGID the simulated TD
// reports, the coordinator accepts the TD launched with it and refuses
// one launched with another. agent.SimulatedFor has no TDX, so the test
// builds the simulated TD (attest/simtee.TDX) itself from the manifest's
// reference.
func TestPinnedInitDataAttestsOnTDX(t *testing.T) {
	ctx := context.Background()
	ownerKey, ownerPEM := coordtest.OwnerKey(t)
	mrtd := [48]byte(bytes.Repeat([]byte{0x66}, 48))
	raw := tdxManifest(ownerPEM, mrtd)
	m, err := manifest.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	o := deploy.Options{Target: deploy.Kata, Workload: "api-td", Coordinator: testCoordinator,
		CAPEM: readTestdata(t, "coordinator-ca.crt"), AgentImage: testAgentImage}
	res, err := deploy.Generate(m, o)
	if err != nil {
		t.Fatal(err)
	}
	bound := boundValue(t, res, attest.TDX)
	if len(bound) != 48 || !bytes.Equal(bound, res.HostData) {
		t.Fatalf("bound %x, generated %s: want the 48-byte SHA-384 of the init-data", bound, res.HostData)
	}
	pinned, pinnedRaw := pinHostData(t, raw, "api-td", res)
	w, _ := pinned.Workload("api-td")
	td := simtee.TDX{MRTD: mrtd}
	copy(td.MRConfigID[:], w.Reference.HostData)
	if !bytes.Equal(td.MRConfigID[:], bound) {
		t.Fatalf("MRCONFIGID %x is not the bound value %x", td.MRConfigID, bound)
	}
	client := startCoordinator(t, pinnedRaw, ownerKey)
	_, got, err := agent.Run(ctx, client, td, "api-td")
	if err != nil {
		t.Fatalf("the TD launched with the pinned init-data is refused: %v", err)
	}
	if !bytes.Equal(got.Claims.HostData, res.HostData) {
		t.Errorf("attested hostData %s, want %s", got.Claims.HostData, res.HostData)
	}
	o.AllowExec = true
	execRes, err := deploy.Generate(m, o)
	if err != nil {
		t.Fatal(err)
	}
	other := td
	copy(other.MRConfigID[:], execRes.HostData)
	if _, _, err := agent.Run(ctx, client, other, "api-td"); err == nil || !strings.Contains(err.Error(), "host data") {
		t.Errorf("a TD launched with the exec-allowing init-data: %v, want a refusal for its host data", err)
	}
}

var _ attest.Attester = (*simtee.SNP)(nil)
