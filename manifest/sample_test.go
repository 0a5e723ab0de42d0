package manifest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"strings"
	"testing"

	"github.com/trustbound/trustbound/attest"
)

func parseSample(t *testing.T, b []byte) *Manifest {
	t.Helper()
	m, err := Parse(b)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return m
}

func TestSampleHostDataIsPolicyHash(t *testing.T) {
	m := parseSample(t, Sample)
	w, ok := m.Workload(SampleWebName)
	if !ok {
		t.Fatal("no web workload")
	}
	want := sha256.Sum256(SamplePodPolicy)
	if !bytes.Equal(w.Reference.HostData, want[:]) {
		t.Errorf("sample.yaml web hostData = %x, SHA-256(sample-pod-policy.rego) = %x", w.Reference.HostData, want)
	}
	if want != SampleWebHostData {
		t.Errorf("SampleWebHostData = %x, want %x", SampleWebHostData, want)
	}
	if !bytes.HasPrefix(SamplePodPolicy, []byte("# Kata agent policy")) || !bytes.Contains(SamplePodPolicy, []byte("package agent_policy")) {
		t.Error("SamplePodPolicy is not the embedded policy")
	}
}

// TestSampleMatchesConstants keeps sample.yaml and the exported values
// that the quickstart's simulated TEEs report the same.
func TestSampleMatchesConstants(t *testing.T) {
	m := parseSample(t, Sample)
	if m.TrustDomain != SampleTrustDomain || !m.AllowSimulated || len(m.Owners) != 1 || m.Owners[0].Name != SampleOwner {
		t.Errorf("header: %q allowSimulated=%v owners=%v", m.TrustDomain, m.AllowSimulated, m.Owners)
	}
	type want struct {
		model        Model
		tee          attest.TEE
		measurement  []byte
		signer       []byte
		hostData     []byte
		productID    *uint16
		minSVN       *uint32
		secretsNamed string
	}
	pid, svn := SampleSignerProductID, SampleSignerMinSVN
	for name, w := range map[string]want{
		SampleLedgerName: {ConfidentialVM, attest.SEVSNP, SampleLedgerMeasurement[:], nil, nil, nil, nil, "db-password,disk-key"},
		SampleSignerName: {Enclave, attest.SGX, SampleSignerMREnclave[:], SampleSignerMRSigner[:], nil, &pid, &svn, "signing-key"},
		SampleWebName:    {ConfidentialContainer, attest.SEVSNP, SampleWebMeasurement[:], nil, SampleWebHostData[:], nil, nil, "disk-key,tls"},
	} {
		got, ok := m.Workload(name)
		if !ok {
			t.Errorf("no workload %s", name)
			continue
		}
		r := got.Reference
		if got.Model != w.model || got.TEE != w.tee {
			t.Errorf("%s: %s on %s", name, got.Model, got.TEE)
		}
		if len(r.Measurements) != 1 || !bytes.Equal(r.Measurements[0], w.measurement) {
			t.Errorf("%s: measurements %x, want %x", name, r.Measurements, w.measurement)
		}
		if !bytes.Equal(r.Signer, w.signer) || !bytes.Equal(r.HostData, w.hostData) {
			t.Errorf("%s: signer %x hostData %x", name, r.Signer, r.HostData)
		}
		if (r.ProductID == nil) != (w.productID == nil) || r.ProductID != nil && *r.ProductID != *w.productID {
			t.Errorf("%s: productID %v", name, r.ProductID)
		}
		if (r.MinSVN == nil) != (w.minSVN == nil) || r.MinSVN != nil && *r.MinSVN != *w.minSVN {
			t.Errorf("%s: minSVN %v", name, r.MinSVN)
		}
		var names []string
		for _, s := range m.SecretsFor(name) {
			names = append(names, s.Name)
		}
		if got := strings.Join(names, ","); got != w.secretsNamed {
			t.Errorf("%s: secrets %s, want %s", name, got, w.secretsNamed)
		}
	}
}

// TestSamplePlaceholder: as shipped, the sample is wrong in exactly one
// place, the owner's key.
func TestSamplePlaceholder(t *testing.T) {
	if c := bytes.Count(Sample, []byte(samplePlaceholder)); c != 1 {
		t.Fatalf("sample.yaml has %d placeholder lines, want 1", c)
	}
	fes := fieldErrors(t, parseSample(t, Sample).Validate())
	if len(fes) != 1 || fes[0].Path != "owners[0].publicKey" {
		t.Errorf("Validate(Sample) = %v, want only the placeholder key refused", asErrors(fes))
	}
}

func TestSampleWith(t *testing.T) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM := string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	for name, in := range map[string]string{
		"as encoded":         keyPEM,
		"without newline":    strings.TrimSpace(keyPEM),
		"with CRLF and tabs": "\t" + strings.ReplaceAll(keyPEM, "\n", "\r\n"),
	} {
		t.Run(name, func(t *testing.T) {
			out := SampleWith(in)
			m := parseSample(t, out)
			if err := m.Validate(); err != nil {
				t.Fatalf("Validate:\n%v\n%s", err, out)
			}
			if m.Owners[0].PublicKey != keyPEM {
				t.Errorf("publicKey = %q, want %q", m.Owners[0].PublicKey, keyPEM)
			}
			if !bytes.Contains(out, []byte("    publicKey: |\n      -----BEGIN PUBLIC KEY-----\n")) {
				t.Errorf("key is not a block scalar at the owner's indentation:\n%s", out)
			}
		})
	}
	if got := SampleWith(""); bytes.Contains(got, []byte("OWNER_PUBLIC_KEY")) {
		t.Error("SampleWith(\"\") left the placeholder")
	}
}
