package dcap_test

import (
	"bytes"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"errors"
	"reflect"
	"testing"

	"github.com/trustbound/trustbound/attest/dcap"
	"github.com/trustbound/trustbound/attest/dcap/dcaptest"
)

// qvlFiles are the dcap-qvl collateral files of testdata.
var qvlFiles = []string{"qvl_sgx_collateral.json", "qvl_tdx_collateral.json", "qvl_tdx_outdated_collateral.json"}

func qvlSeeds(f *testing.F) []*dcap.Collateral {
	var out []*dcap.Collateral
	for _, name := range qvlFiles {
		c, err := dcap.ParseQVLCollateral(readTestdata(f, name))
		if err != nil {
			f.Fatal(err)
		}
		out = append(out, c)
	}
	return out
}

// served wraps a marshalled document as a served body with a zero
// signature (parsers do not verify it).
func served(key string, doc []byte) []byte {
	k, _ := json.Marshal(key)
	return append(append(append(append([]byte("{"), k...), ':'), doc...), []byte(`,"signature":"`+hex.EncodeToString(make([]byte, 64))+`"}`)...)
}

// FuzzParseTCBInfo: ParseTCBInfo never panics, refuses only with
// ErrCollateral, keeps the signed bytes as they were, and what it accepts
// survives a round trip through dcaptest's encoder unchanged.
func FuzzParseTCBInfo(f *testing.F) {
	for _, tt := range tcbInfoFiles {
		f.Add(readTestdata(f, tt.file))
	}
	for _, c := range qvlSeeds(f) {
		f.Add(c.TCBInfo)
	}
	f.Add([]byte(`{"tcbInfo":{},"signature":""}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		ti, err := dcap.ParseTCBInfo(body)
		if err != nil {
			if ti != nil || !errors.Is(err, dcap.ErrCollateral) {
				t.Fatalf("refusal %v with %v", err, ti)
			}
			return
		}
		if !bytes.Contains(body, ti.Signed) || !bytes.Contains(bytes.ToLower(body), []byte(hex.EncodeToString(ti.Signature[:]))) {
			t.Fatal("signed bytes or signature not from the body")
		}
		doc, err := dcaptest.MarshalTCBInfo(ti)
		if err != nil {
			t.Fatal(err)
		}
		again, err := dcap.ParseTCBInfo(served("tcbInfo", doc))
		if err != nil {
			t.Fatalf("re-encoded TCB info refused: %v", err)
		}
		a, b := *ti, *again
		a.Signed, a.Signature, b.Signed, b.Signature = nil, [64]byte{}, nil, [64]byte{}
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("round trip changed it:\n%+v\n%+v", a, b)
		}
	})
}

// FuzzParseQEIdentity: as FuzzParseTCBInfo, for QE identities.
func FuzzParseQEIdentity(f *testing.F) {
	for _, name := range qeIdentityFiles {
		f.Add(readTestdata(f, name))
	}
	for _, c := range qvlSeeds(f) {
		f.Add(c.QEIdentity)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		q, err := dcap.ParseQEIdentity(body)
		if err != nil {
			if q != nil || !errors.Is(err, dcap.ErrCollateral) {
				t.Fatalf("refusal %v with %v", err, q)
			}
			return
		}
		if !bytes.Contains(body, q.Signed) {
			t.Fatal("signed bytes not from the body")
		}
		doc, err := dcaptest.MarshalQEIdentity(q)
		if err != nil {
			t.Fatal(err)
		}
		again, err := dcap.ParseQEIdentity(served("enclaveIdentity", doc))
		if err != nil {
			t.Fatalf("re-encoded QE identity refused: %v", err)
		}
		a, b := *q, *again
		a.Signed, a.Signature, b.Signed, b.Signature = nil, [64]byte{}, nil, [64]byte{}
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("round trip changed it:\n%+v\n%+v", a, b)
		}
	})
}

// FuzzParseQVLCollateral: never panics, refuses only with ErrCollateral,
// and the bodies it rebuilds carry exactly the documents and signatures of
// the input, in a form ParseTCBInfo and ParseQEIdentity read as such.
func FuzzParseQVLCollateral(f *testing.F) {
	for _, name := range qvlFiles {
		f.Add(readTestdata(f, name))
	}
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := dcap.ParseQVLCollateral(b)
		if err != nil {
			if c != nil || !errors.Is(err, dcap.ErrCollateral) {
				t.Fatalf("refusal %v with %v", err, c)
			}
			return
		}
		var in map[string]string
		if err := json.Unmarshal(b, &in); err != nil {
			t.Fatalf("accepted what encoding/json refuses: %v", err)
		}
		for _, d := range []struct {
			body          []byte
			key, doc, sig string
		}{
			{c.TCBInfo, "tcbInfo", "tcb_info", "tcb_info_signature"},
			{c.QEIdentity, "enclaveIdentity", "qe_identity", "qe_identity_signature"},
		} {
			var out map[string]json.RawMessage
			if err := json.Unmarshal(d.body, &out); err != nil || len(out) != 2 {
				t.Fatalf("rebuilt %s body is not a two-member object: %v", d.key, err)
			}
			if string(out[d.key]) != in[d.doc] {
				t.Fatalf("%s: the signed bytes changed", d.key)
			}
			var sig string
			if json.Unmarshal(out["signature"], &sig) != nil || !bytes.EqualFold([]byte(sig), []byte(in[d.sig])) {
				t.Fatalf("%s: the signature changed", d.key)
			}
		}
		if hex.EncodeToString(c.PCKCRL) != string(bytes.ToLower([]byte(in["pck_crl"]))) ||
			string(c.QEIdentityIssuerChain) != in["qe_identity_issuer_chain"] {
			t.Fatal("CRL or chain changed")
		}
	})
}

// FuzzParseCRL: ParseCRL never panics and accepts one CRL only.
func FuzzParseCRL(f *testing.F) {
	f.Add(readTestdata(f, "gotdxguest-spr/pckcrl"))
	f.Add(readTestdata(f, "gotdxguest-spr/rootcrl.der"))
	for _, c := range qvlSeeds(f) {
		f.Add(c.PCKCRL)
		f.Add(c.RootCACRL)
	}
	f.Add([]byte("-----BEGIN X509 CRL-----\n" + wrap64(readTestdata(f, "gotdxguest-spr/rootcrl.der")) + "-----END X509 CRL-----\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		crl, err := dcap.ParseCRL(b)
		if err != nil {
			if crl != nil {
				t.Fatal("CRL with an error")
			}
			return
		}
		if !bytes.Contains(b, crl.RawTBSRevocationList) && !bytes.HasPrefix(bytes.TrimSpace(b), []byte("-----BEGIN")) {
			t.Fatal("parsed CRL not from the input")
		}
	})
}

// FuzzParseIssuerChain: ParseIssuerChain never panics and returns the
// certificates of the input only.
func FuzzParseIssuerChain(f *testing.F) {
	for _, name := range []string{"pckcrl_issuer_chain.pem", "tcbinfo_issuer_chain.pem", "qeidentity_issuer_chain.pem"} {
		f.Add(readTestdata(f, "gotdxguest-spr/"+name))
	}
	for _, c := range qvlSeeds(f) {
		f.Add(c.PCKCRLIssuerChain)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		certs, err := dcap.ParseIssuerChain(b)
		if err != nil {
			if certs != nil {
				t.Fatal("certificates with an error")
			}
			return
		}
		if len(certs) == 0 || len(certs) > 8 {
			t.Fatalf("%d certificates", len(certs))
		}
	})
}

// FuzzParsePCKExtensions: the SGX extension parser never panics, and what
// it accepts dcaptest encodes back to something it reads the same.
func FuzzParsePCKExtensions(f *testing.F) {
	for _, name := range []string{"qvl_tdx_quote_v4.dat", "gotdxguest-spr/quote_v4.dat"} {
		for _, e := range parseTDQuote(f, readTestdata(f, name)).chain[0].Extensions {
			if e.Id.Equal(dcap.OIDSGXExtensions) {
				f.Add(e.Value)
			}
		}
	}
	f.Add([]byte{0x30, 0x00})
	f.Fuzz(func(t *testing.T, v []byte) {
		c := &x509.Certificate{Extensions: []pkix.Extension{{Id: dcap.OIDSGXExtensions, Value: v}}}
		x, err := dcap.ParsePCKExtensions(c)
		if err != nil {
			return
		}
		enc, err := dcaptest.EncodePCKExtensions(x)
		if err != nil {
			t.Fatal(err)
		}
		c.Extensions[0].Value = enc
		again, err := dcap.ParsePCKExtensions(c)
		if err != nil || !reflect.DeepEqual(x, again) {
			t.Fatalf("round trip: %v\n%+v\n%+v", err, x, again)
		}
	})
}
