package collateral

import (
	"bytes"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"os"
	"testing"
	"time"

	"github.com/google/go-sev-guest/kds"
	"github.com/google/go-sev-guest/verify/trust"
)

// FuzzReadBundle: an offline bundle is untrusted input. It never panics,
// and what it accepts writes back to a bundle that reads the same.
func FuzzReadBundle(f *testing.F) {
	golden, err := os.ReadFile("testdata/milan-bundle.golden.json")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(golden)
	f.Add([]byte(`{"version":1,"format":"trustbound-collateral","entries":[]}`))
	f.Add([]byte(`{"version":1,"format":"trustbound-collateral","entries":[{"url":"https://kdsintf.amd.com/vcek/v1/Milan/crl","body":"AA==","fetchedAt":"2026-03-01T12:00:00Z"}]}`))
	f.Add([]byte(`{"version":2}`))
	f.Add(append(bytes.Clone(golden), '{'))
	f.Fuzz(func(t *testing.T, data []byte) {
		entries, err := readBundle(bytes.NewReader(data))
		if err != nil {
			return
		}
		var buf bytes.Buffer
		if err := writeBundle(&buf, entries); err != nil {
			t.Fatal(err)
		}
		again, err := readBundle(&buf)
		if err != nil {
			t.Fatalf("a written bundle does not read back: %v", err)
		}
		if len(again) != len(entries) {
			t.Fatalf("%d entries read back, want %d", len(again), len(entries))
		}
		for i, e := range again {
			w := entries[i]
			if e.url != w.url || !bytes.Equal(e.body, w.body) || !e.fetchedAt.Equal(w.fetchedAt) || !e.expiresAt.Equal(w.expiresAt) {
				t.Fatalf("entry %d changed in the round trip", i)
			}
		}
	})
}

// FuzzDecodeCacheFile: cache files are checked, never trusted.
func FuzzDecodeCacheFile(f *testing.F) {
	vcek, err := os.ReadFile("testdata/gosevguest-milan-vcek.der")
	if err != nil {
		f.Fatal(err)
	}
	cert, err := x509.ParseCertificate(vcek)
	if err != nil {
		f.Fatal(err)
	}
	exts, err := kds.VcekCertificateExtensions(cert)
	if err != nil {
		f.Fatal(err)
	}
	fx := &Fetcher{dir: f.TempDir()}
	e := newEntry(kds.VCEKCertURL("Milan", exts.HWID, exts.TCBVersion), vcek, time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	if err := fx.writeDisk(e); err != nil {
		f.Fatal(err)
	}
	good, err := os.ReadFile(fx.dir + "/" + cacheName(e.url))
	if err != nil {
		f.Fatal(err)
	}
	if _, err := decodeCacheFile(good); err != nil {
		f.Fatalf("seed does not decode: %v", err)
	}
	f.Add(good)
	f.Add([]byte(`{"version":1}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := decodeCacheFile(data)
		if err != nil {
			return
		}
		if len(e.body) == 0 || len(e.body) > maxBody || e.fetchedAt.IsZero() {
			t.Fatalf("accepted an entry with body %d bytes, fetchedAt %v", len(e.body), e.fetchedAt)
		}
	})
}

// FuzzParseTHIM: Azure's answer is untrusted input.
func FuzzParseTHIM(f *testing.F) {
	vcek, err := os.ReadFile("testdata/gosevguest-milan-vcek.der")
	if err != nil {
		f.Fatal(err)
	}
	real, err := json.Marshal(thimResponse{
		VcekCert:         string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: vcek})),
		CertificateChain: string(trust.AskArkMilanVcekBytes),
		TCBM:             "4405000000000002",
		CacheControl:     "86400",
	})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(real)
	f.Add([]byte(`{"vcekCert":"-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n","certificateChain":"","tcbm":"7308000000000003","cacheControl":"86400"}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		der, err := parseTHIM(data)
		if err == nil && len(der) == 0 {
			t.Fatal("accepted an empty certificate")
		}
	})
}
