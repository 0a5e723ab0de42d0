package sgx_test

import (
	"bytes"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/trustbound/trustbound/attest"
	"github.com/trustbound/trustbound/attest/sgx"
)

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestParseQuoteFields reads the Azure MAA release quote field by field;
// the expected values are its bytes at the spec offsets (see
// testdata/PROVENANCE.md).
func TestParseQuoteFields(t *testing.T) {
	b := readTestdata(t, "quote.release.bin")
	q, err := sgx.ParseQuote(b)
	if err != nil {
		t.Fatal(err)
	}
	h := q.Header
	if h.Version != 3 || h.AttestationKeyType != 2 || h.TEEType != 0 || h.QESVN != 9 || h.PCESVN != 14 ||
		!bytes.Equal(h.QEVendorID[:], mustHex(t, "939a7233f79c4ca9940a0db3957f0607")) ||
		!bytes.Equal(h.UserData[:], mustHex(t, "bdf42d1576272633a660550cbb11e56400000000")) {
		t.Errorf("header %+v", h)
	}
	r := q.Body
	if !bytes.Equal(r.CPUSVN[:], mustHex(t, "14140b07ff800e000000000000000000")) || r.MiscSelect != 0 ||
		r.Attributes != (sgx.Attributes{Flags: 5, XFRM: 7}) || r.Attributes.Debug() ||
		!bytes.Equal(r.MREnclave[:], mustHex(t, "d37d983a85d63fb49649610e2eba0930ecdbff6d113aca3ff3fc7261696c0134")) ||
		!bytes.Equal(r.MRSigner[:], mustHex(t, "feb995eb86c349ac98e5afbbb5732ca7376ec9979002702ea17ad476e0853a04")) ||
		r.ConfigID != [64]byte{} || r.ISVProdID != 1 || r.ISVSVN != 1 || r.ConfigSVN != 0 ||
		r.ISVFamilyID != [16]byte{} || r.ISVExtProdID != [16]byte{} ||
		!bytes.Equal(r.ReportData[:32], mustHex(t, "7192385c3c0605de55bb9476ce1d90748190ecb32a8eed7f5207b30cf6a1fe89")) ||
		[32]byte(r.ReportData[32:]) != [32]byte{} {
		t.Errorf("report body %+v", r)
	}
	s := q.Signature
	if !bytes.Equal(s.ISVSignature[:4], mustHex(t, "dcce84c5")) || !bytes.Equal(s.AttestationKey[:4], mustHex(t, "9f9b3c3d")) {
		t.Errorf("ISV signature %x…, attestation key %x…", s.ISVSignature[:4], s.AttestationKey[:4])
	}
	qe := s.QEReport
	if qe.ISVProdID != 1 || qe.ISVSVN != 9 || qe.Attributes != (sgx.Attributes{Flags: 0x15, XFRM: 7}) ||
		!bytes.Equal(qe.MRSigner[:], mustHex(t, "8c4f5775d796503e96137f77c68a829a0056ac8ded70140b081b094490c57bff")) {
		t.Errorf("QE report %+v", qe)
	}
	if !bytes.Equal(s.QEAuthData, mustHex(t, "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f")) {
		t.Errorf("QE auth data %x", s.QEAuthData)
	}
	if s.CertDataType != sgx.CertDataPCKChain || len(s.CertData) != 3548 || s.CertData[len(s.CertData)-1] != 0 {
		t.Errorf("certification data type %d, %d bytes", s.CertDataType, len(s.CertData))
	}
	wantCN := []string{"Intel SGX PCK Certificate", "Intel SGX PCK Processor CA", "Intel SGX Root CA"}
	if len(q.PCKChain) != len(wantCN) {
		t.Fatalf("%d certificates in the chain", len(q.PCKChain))
	}
	for i, der := range q.PCKChain {
		c, err := x509.ParseCertificate(der)
		if err != nil || c.Subject.CommonName != wantCN[i] {
			t.Errorf("chain[%d]: %v, %v", i, c.Subject, err)
		}
	}
	if !bytes.Equal(q.SignedByAttestationKey, b[:432]) || !bytes.Equal(q.SignedByPCK, b[436+128:436+512]) {
		t.Error("signed ranges are not the spec's")
	}
	// The quote does not alias its input.
	b[64+48] ^= 0xff
	if q.Body.MREnclave[0] != 0xd3 || q.SignedByAttestationKey[64+48] != 0xd3 {
		t.Error("Quote aliases the input")
	}
}

func TestMarshalRoundTrip(t *testing.T) {
	inputs := map[string][]byte{"fake": newTestCA(t, true).quote(t, sgx.ReportBody{ConfigID: [64]byte{1}}, nil)}
	for _, f := range []string{"quote.release.bin", "quote.debug.bin", "occlum_quote_v3.dat", "simtee_quote.bin"} {
		inputs[f] = readTestdata(t, f)
	}
	for name, b := range inputs {
		q, err := sgx.ParseQuote(b)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		out, err := q.Marshal()
		if err != nil || !bytes.Equal(out, b) {
			t.Errorf("%s: Marshal differs from the input (err %v)", name, err)
		}
	}
}

func TestPCKChainPEMStrict(t *testing.T) {
	q0, err := sgx.ParseQuote(readTestdata(t, "quote.release.bin"))
	if err != nil {
		t.Fatal(err)
	}
	chain := bytes.TrimSuffix(q0.Signature.CertData, []byte{0})
	second := bytes.Index(chain[1:], []byte("-----BEGIN")) + 1
	tests := []struct {
		name string
		data []byte
		ok   bool
		n    int
	}{
		{"as carried, NUL-terminated", q0.Signature.CertData, true, 3},
		{"without NUL", chain, true, 3},
		{"CRLF and blank lines", bytes.ReplaceAll(chain, []byte("\n"), []byte("\r\n\r\n")), true, 3},
		{"two NULs", append(bytes.Clone(chain), 0, 0), false, 0},
		{"text between blocks", concat(chain[:second], []byte("junk\n"), chain[second:]), false, 0},
		{"text before", concat([]byte("x"), chain), false, 0},
		{"broken first block", concat(chain[:20], []byte("!"), chain[21:]), false, 0},
		{"private key block", []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"), false, 0},
		{"empty", nil, false, 0},
		{"only whitespace and NUL", []byte("\n\n\x00"), false, 0},
		{"nine certificates", bytes.Repeat(chain[:second], 9), false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := *q0
			q.Signature.CertData = tt.data
			b, err := q.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			got, err := sgx.ParseQuote(b)
			if tt.ok != (err == nil) {
				t.Fatalf("err = %v, want ok=%v", err, tt.ok)
			}
			if err != nil && !errors.Is(err, attest.ErrMalformed) {
				t.Fatalf("err = %v, want ErrMalformed", err)
			}
			if err == nil && len(got.PCKChain) != tt.n {
				t.Fatalf("%d certificates, want %d", len(got.PCKChain), tt.n)
			}
		})
	}
}

func TestPPIDCertDataSizes(t *testing.T) {
	q, err := sgx.ParseQuote(readTestdata(t, "quote.release.bin"))
	if err != nil {
		t.Fatal(err)
	}
	for typ, size := range map[uint16]int{1: 36, 2: 276, 3: 404} {
		for _, n := range []int{size, size - 1, size + 1} {
			q.Signature.CertDataType, q.Signature.CertData = typ, make([]byte, n)
			b, err := q.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			_, err = sgx.ParseQuote(b)
			if (err == nil) != (n == size) {
				t.Errorf("type %d with %d bytes: err = %v", typ, n, err)
			}
		}
	}
	for _, typ := range []uint16{0, 4, 6, 7, 0xffff} {
		q.Signature.CertDataType = typ
		b, _ := q.Marshal()
		if _, err := sgx.ParseQuote(b); !errors.Is(err, attest.ErrMalformed) || !strings.Contains(err.Error(), "type") {
			t.Errorf("type %d: err = %v", typ, err)
		}
	}
}

func concat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
