package tee

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/google/go-configfs-tsm/report"

	"github.com/trustbound/trustbound/attest"
	"github.com/trustbound/trustbound/attest/simtee"
)

func FuzzReadResponse(f *testing.F) {
	f.Add(rspCode(0))
	f.Add(nvReadPublicOK())
	f.Add([]byte{0x80, 0x01, 0, 0, 0, 9, 0, 0, 0, 0})
	f.Add([]byte{0x80, 0x01, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		rsp, err := ReadResponse(bytes.NewReader(b))
		if err != nil {
			return
		}
		if len(rsp) < tpmHeaderSize || len(rsp) > maxTPMResponse || !bytes.Equal(rsp, b[:len(rsp)]) {
			t.Fatalf("ReadResponse returned %d bytes that are not a prefix of the input", len(rsp))
		}
	})
}

func FuzzParseTHIMCertification(f *testing.F) {
	f.Add([]byte(`{"vcekCert":"-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n","tcbm":"db18000000000004","certificateChain":""}`))
	f.Add([]byte(`{"vcekCert":"junk -----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----"}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		der, err := ParseTHIMCertification(b)
		if err == nil && (len(der) == 0 && !bytes.Contains(b, []byte("CERTIFICATE"))) {
			t.Fatal("a certificate out of no PEM block")
		}
	})
}

func FuzzParseTDQuoteResponse(f *testing.F) {
	f.Add([]byte(`{"quote":"AAEC"}`))
	f.Add([]byte(`{"quote":"AAE="}`))
	f.Add([]byte(`{"quote":""}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		q, err := ParseTDQuoteResponse(b)
		if err == nil && (len(q) == 0 || len(q) > 64<<10) {
			t.Fatalf("a %d-byte quote accepted", len(q))
		}
	})
}

// FuzzEvidenceFromReport feeds configfs-tsm outblob and auxblob bytes to
// the evidence framing; it must never panic, and refusals of bytes it
// frames wrap attest.ErrMalformed.
func FuzzEvidenceFromReport(f *testing.F) {
	ev, err := (simtee.SNP{}).Attest(context.Background(), [64]byte{1})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(true, ev.Data, certTable(ev.Certs[0]))
	f.Add(true, ev.Data, []byte{})
	td, err := (simtee.TDX{}).Attest(context.Background(), [64]byte{2})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(false, td.Data, []byte{})
	f.Add(false, []byte("short"), []byte{})
	f.Fuzz(func(t *testing.T, sev bool, out, aux []byte) {
		p := ProviderTDX
		if sev {
			p = ProviderSEV
		}
		ev, err := EvidenceFromReport(p, &report.Response{Provider: p + "\n", OutBlob: out, AuxBlob: aux})
		if err != nil {
			if !errors.Is(err, attest.ErrMalformed) {
				t.Fatalf("refusal does not wrap ErrMalformed: %v", err)
			}
			return
		}
		if !bytes.Equal(ev.Data, out) {
			t.Fatal("the evidence is not the outblob")
		}
	})
}
