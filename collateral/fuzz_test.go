package collateral

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"maps"
	"math/big"
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
	for _, name := range []string{"dcapqvl-sgx_quote_collateral.json", "dcapqvl-tdx_quote_collateral.json"} {
		fx := loadQVL(f, name)
		f.Add(fx.raw)
		es, err := parseQVL(fx.raw)
		if err != nil {
			f.Fatal(err)
		}
		var v2 bytes.Buffer
		if err := writeBundle(&v2, es); err != nil {
			f.Fatal(err)
		}
		f.Add(v2.Bytes())
	}
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
			if e.url != w.url || !bytes.Equal(e.body, w.body) || !maps.Equal(e.headers, w.headers) || !e.fetchedAt.Equal(w.fetchedAt) || !e.expiresAt.Equal(w.expiresAt) {
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
	fx2 := &Fetcher{dir: f.TempDir()}
	es, err := parseQVL(loadQVL(f, "dcapqvl-tdx_quote_collateral.json").raw)
	if err != nil {
		f.Fatal(err)
	}
	for _, e := range es {
		if err := fx2.writeDisk(e); err != nil {
			f.Fatal(err)
		}
		data, err := os.ReadFile(fx2.dir + "/" + cacheName(e.url))
		if err != nil {
			f.Fatal(err)
		}
		if _, err := decodeCacheFile(data); err != nil {
			f.Fatalf("seed %s does not decode: %v", e.url, err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := decodeCacheFile(data)
		if err != nil {
			return
		}
		if len(e.body) == 0 || len(e.body) > maxBody || e.fetchedAt.IsZero() {
			t.Fatalf("accepted an entry with body %d bytes, fetchedAt %v", len(e.body), e.fetchedAt)
		}
		k, err := classify(e.url)
		if err != nil || validateEntry(k, e.url, e.body, e.headers) != nil {
			t.Fatalf("accepted an entry that does not validate: %v", err)
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

// FuzzParseQVL: dcap-qvl collateral files are untrusted input. What is
// accepted is four entries, one of each Intel kind, each valid for its
// URL, for one platform; and it reads back the same through a bundle.
func FuzzParseQVL(f *testing.F) {
	for _, name := range []string{"dcapqvl-sgx_quote_collateral.json", "dcapqvl-tdx_quote_collateral.json"} {
		f.Add(loadQVL(f, name).raw)
	}
	f.Add([]byte(`{"tcb_info":"{}"}`))
	f.Add([]byte(`{"pck_crl_issuer_chain":"","root_ca_crl":[1,2],"pck_crl":"00","tcb_info_issuer_chain":"","tcb_info":"{\"id\":\"TDX\"}","tcb_info_signature":"","qe_identity_issuer_chain":"","qe_identity":"{}","qe_identity_signature":""}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		es, err := parseQVL(data)
		if err != nil {
			return
		}
		kinds := map[kind]bool{}
		for _, e := range es {
			k, err := classify(e.url)
			if err != nil || validateEntry(k, e.url, e.body, e.headers) != nil {
				t.Fatalf("accepted an invalid entry %s: %v", e.url, err)
			}
			kinds[k] = true
		}
		if len(es) != 4 || len(kinds) != 4 {
			t.Fatalf("accepted %d entries of %d kinds, want 4 of 4", len(es), len(kinds))
		}
		tcb, _ := parseIntelURL(es[0].url)
		qe, _ := parseIntelURL(es[1].url)
		if tcb.kind != kindTCBInfo || qe.kind != kindQEIdentity || tcb.tee != qe.tee {
			t.Fatalf("TCB info %s and QE identity %s are not of one kind", es[0].url, es[1].url)
		}
		var buf bytes.Buffer
		if err := writeBundle(&buf, es); err != nil {
			t.Fatal(err)
		}
		again, err := readBundle(&buf)
		if err != nil || len(again) != len(es) {
			t.Fatalf("the bundle of accepted collateral does not read back: %v", err)
		}
	})
}

// FuzzMatchFile: raw collateral files (in a bundle directory, or one given
// as Options.Bundles) are untrusted input. What is matched is valid for
// its URL, and a CRL is matched only at its KDS path.
func FuzzMatchFile(f *testing.F) {
	vcek, err := os.ReadFile("testdata/gosevguest-milan-vcek.der")
	if err != nil {
		f.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ARK-Milan"}, NotBefore: t0, NotAfter: t0.Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		f.Fatal(err)
	}
	ark, err := x509.ParseCertificate(der)
	if err != nil {
		f.Fatal(err)
	}
	crl, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{Number: big.NewInt(1), ThisUpdate: t0, NextUpdate: t0.Add(time.Hour)}, ark, key)
	if err != nil {
		f.Fatal(err)
	}
	f.Add("vcek.der", vcek)
	f.Add("vcek.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: vcek}))
	f.Add("ask_ark.pem", trust.AskArkMilanVcekBytes)
	f.Add("kdsintf.amd.com/vlek/v1/Milan/crl", crl)
	f.Add("vcek/v1/Milan/crl", pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: crl}))
	f.Add("crl.der", crl)
	f.Add("notes.txt", []byte("text"))
	f.Fuzz(func(t *testing.T, rel string, body []byte) {
		url, b, err := matchFile(rel, body)
		if err != nil || url == "" {
			return
		}
		k, err := classify(url)
		if err != nil || validate(k, url, b) != nil {
			t.Fatalf("matched %s to %s, which does not validate", rel, url)
		}
		if k == kindCRL && kdsPath.FindStringSubmatch(rel) == nil {
			t.Fatalf("a CRL matched at %s, not a KDS path", rel)
		}
	})
}
