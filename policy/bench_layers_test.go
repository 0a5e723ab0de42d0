package policy

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"strings"
	"testing"
	"time"

	"github.com/trustbound/trustbound/attest"
	"github.com/trustbound/trustbound/attest/formats"
	"github.com/trustbound/trustbound/attest/simtee"
	"github.com/trustbound/trustbound/manifest"
	"github.com/trustbound/trustbound/token"
)

// BenchmarkLayers is the cost per attestation of each appraisal layer, in
// one run beside the cost of verifying the evidence they appraise: a
// simulated SNP report of the sample manifest's ledger-vm, verified
// through the formats registry (warm: its chain verified once before),
// then appraised by
//
//	manifest             layer (a): policy.Appraise against the reference values
//	release              a Key Vault release policy pinning eight token claims
//	release+claims-json  the same with the claims encoded and decoded as the
//	                     coordinator does for each attestation
//	attestation          Azure attestation policy text with the same rules and
//	                     one issued claim, over the flattened Azure claims
//	rego                 a compiled Rego policy with the same rules
//
// and, for scale, signing the token (token-es256). Run with
//
//	go test -run '^$' -bench Layers ./policy/
func BenchmarkLayers(b *testing.B) {
	ctx := context.Background()
	now := time.Now()
	m, w := layerManifest(b)
	sim := simtee.SNP{Measurement: manifest.SampleLedgerMeasurement}
	ev, err := sim.Attest(ctx, [64]byte{1})
	if err != nil {
		b.Fatal(err)
	}
	reg, err := formats.Registry(formats.Config{})
	if err != nil {
		b.Fatal(err)
	}
	opts := attest.Options{Now: now, AllowSimulated: true}
	claims, err := reg.Verify(ctx, ev, opts)
	if err != nil {
		b.Fatal(err)
	}
	verdict, err := Appraise(claims, m, w)
	if err != nil {
		b.Fatal(err)
	}
	tc, err := token.NewClaims(token.AttestationResult{Claims: claims, Status: verdict.Status, Workload: w.Name, Model: string(w.Model),
		Subject: "spiffe://" + m.TrustDomain + "/confidential-vm/ledger-vm", Nonce: "bm9uY2U",
		Runtime: []byte(`{"nonce":"bm9uY2U","workload":"ledger-vm","keys":[{"kid":"tb-identity","kty":"EC","crv":"P-256","x":"AA","y":"AA"}]}`)})
	if err != nil {
		b.Fatal(err)
	}
	const iss = "https://coordinator.example"
	tc.Issuer = iss
	tokenClaims := func() map[string]any {
		raw, err := json.Marshal(tc)
		if err != nil {
			b.Fatal(err)
		}
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		var out map[string]any
		if err := dec.Decode(&out); err != nil {
			b.Fatal(err)
		}
		return out
	}
	measurement := claims.Measurement.String()

	release, err := ParseReleasePolicy([]byte(`{"version": "1.0.0", "anyOf": [{"authority": "` + iss + `", "allOf": [
		{"claim": "x-ms-attestation-type", "equals": "sevsnpvm"},
		{"claim": "x-ms-sevsnpvm-is-debuggable", "equals": false},
		{"claim": "x-ms-sevsnpvm-launchmeasurement", "equals": "` + measurement + `"},
		{"claim": "x-ms-sevsnpvm-vmpl", "lessOrEquals": 0},
		{"claim": "x-ms-sevsnpvm-bootloader-svn", "greaterOrEquals": 2},
		{"claim": "x-ms-sevsnpvm-snpfw-svn", "greaterOrEquals": 5},
		{"claim": "x-ms-sevsnpvm-microcode-svn", "greaterOrEquals": 68},
		{"claim": "x-tb-workload", "equals": "ledger-vm"}]}]}`))
	if err != nil {
		b.Fatal(err)
	}
	att, err := ParseAttestationPolicy(`version=1.0;
authorizationrules {
	[type=="x-ms-attestation-type", value=="sevsnpvm"] && [type=="x-ms-sevsnpvm-is-debuggable", value==false]
	&& [type=="x-ms-sevsnpvm-launchmeasurement", value=="` + measurement + `"] && [type=="x-ms-sevsnpvm-vmpl", value<=0]
	&& [type=="x-ms-sevsnpvm-bootloader-svn", value>=2] && [type=="x-ms-sevsnpvm-snpfw-svn", value>=5]
	&& [type=="x-ms-sevsnpvm-microcode-svn", value>=68] => permit();
};
issuancerules {
	c:[type=="x-ms-sevsnpvm-launchmeasurement"] => issue(type="image", value=c.value);
};`)
	if err != nil {
		b.Fatal(err)
	}
	rego, err := CompileRego(ctx, "ledger", `package trustbound

default allow := false

allow if {
	input.azure["x-ms-attestation-type"] == "sevsnpvm"
	input.azure["x-ms-sevsnpvm-is-debuggable"] == false
	input.claims.measurement in input.reference.measurements
	input.azure["x-ms-sevsnpvm-vmpl"] <= 0
	input.azure["x-ms-sevsnpvm-bootloader-svn"] >= 2
	input.azure["x-ms-sevsnpvm-snpfw-svn"] >= 5
	input.azure["x-ms-sevsnpvm-microcode-svn"] >= 68
	input.workload.name == "ledger-vm"
}
`)
	if err != nil {
		b.Fatal(err)
	}
	flat := map[string]any{}
	for k, v := range tc.Azure {
		flat[k] = v
	}
	ring, err := token.NewKeyring(5*time.Minute, layerKey(b))
	if err != nil {
		b.Fatal(err)
	}
	issuer, err := token.NewIssuer(token.Config{Issuer: iss, Keyring: ring, TTL: 5 * time.Minute})
	if err != nil {
		b.Fatal(err)
	}
	rin := RegoInput{Claims: claims, Azure: tc.Azure, Workload: w, Now: now}
	decoded := tokenClaims()

	for _, bc := range []struct {
		name string
		run  func() error
	}{
		{"verify-snp", func() error { _, err := reg.Verify(ctx, ev, opts); return err }},
		{"manifest", func() error { _, err := Appraise(claims, m, w); return err }},
		{"release", func() error { return release.Evaluate(iss, decoded) }},
		{"release+claims-json", func() error { return release.Evaluate(iss, tokenClaims()) }},
		{"attestation", func() error {
			_, _, err := att.Evaluate(flat)
			return err
		}},
		{"rego", func() error { return rego.Evaluate(ctx, rin) }},
		{"token-es256", func() error { _, err := issuer.Issue(tc, now); return err }},
	} {
		if err := bc.run(); err != nil { // every layer permits the honest workload
			b.Fatalf("%s: %v", bc.name, err)
		}
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := bc.run(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// layerManifest is the sample manifest (with a fresh owner key) and its
// ledger-vm workload.
func layerManifest(b *testing.B) (*manifest.Manifest, *manifest.Workload) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		b.Fatal(err)
	}
	m, err := manifest.Parse(manifest.SampleWith(strings.TrimSpace(string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})))))
	if err != nil {
		b.Fatal(err)
	}
	if err := m.Validate(); err != nil {
		b.Fatal(err)
	}
	w, ok := m.Workload(manifest.SampleLedgerName)
	if !ok {
		b.Fatal("no ledger-vm in the sample")
	}
	return m, w
}

func layerKey(b *testing.B) token.Key {
	k, err := token.GenerateKey(token.ES256, time.Now())
	if err != nil {
		b.Fatal(err)
	}
	return k
}
