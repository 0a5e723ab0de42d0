package sgx_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/trustbound/trustbound/attest"
	"github.com/trustbound/trustbound/attest/sgx"
)

// FuzzParseQuote checks that ParseQuote never panics, refuses only with
// attest.ErrMalformed, and that what it accepts is consistent: the signed
// ranges are the spec's, the length fields add up, and Marshal gives back
// the input byte for byte.
func FuzzParseQuote(f *testing.F) {
	// Real quotes, a quote of attest/simtee (see testdata/PROVENANCE.md),
	// their first bytes, and short frames.
	for _, name := range []string{"quote.release.bin", "quote.debug.bin", "occlum_quote_v3.dat", "simtee_quote.bin"} {
		b := readTestdata(f, name)
		f.Add(b)
		f.Add(b[:sgx.SignedSize+4])
	}
	// The smallest well-formed frames: no QE auth data and a PPID type-1
	// certification data; a one-certificate chain.
	ca := newTestCA(f, true)
	f.Add(ca.quote(f, sgx.ReportBody{}, func(q *sgx.Quote) {
		q.Signature.QEAuthData = nil
		q.Signature.CertDataType, q.Signature.CertData = sgx.CertDataPPIDCleartext, make([]byte, 36)
	}))
	f.Add(ca.quote(f, sgx.ReportBody{}, func(q *sgx.Quote) {
		q.Signature.CertData = q.Signature.CertData[:bytes.Index(q.Signature.CertData, []byte("-----END"))+26]
	}))
	f.Add([]byte{})
	f.Add([]byte{3, 0, 2, 0})
	f.Add(make([]byte, sgx.SignedSize+4+64+64+sgx.ReportBodySize+64+2+6))

	f.Fuzz(func(t *testing.T, b []byte) {
		q, err := sgx.ParseQuote(b)
		if err != nil {
			if q != nil || !errors.Is(err, attest.ErrMalformed) {
				t.Fatalf("refusal %v with quote %v", err, q)
			}
			return
		}
		if !bytes.Equal(q.SignedByAttestationKey, b[:sgx.SignedSize]) ||
			!bytes.Equal(q.SignedByPCK, b[sgx.SignedSize+4+128:sgx.SignedSize+4+128+sgx.ReportBodySize]) {
			t.Fatal("signed ranges are not at the spec's offsets")
		}
		s := q.Signature
		sigLen := int(binary.LittleEndian.Uint32(b[sgx.SignedSize:]))
		if sgx.SignedSize+4+sigLen != len(b) || 64+64+sgx.ReportBodySize+64+2+len(s.QEAuthData)+6+len(s.CertData) != sigLen {
			t.Fatal("lengths do not add up")
		}
		if (s.CertDataType == sgx.CertDataPCKChain) != (len(q.PCKChain) > 0) {
			t.Fatalf("type %d with %d certificates", s.CertDataType, len(q.PCKChain))
		}
		out, err := q.Marshal()
		if err != nil || !bytes.Equal(out, b) {
			t.Fatalf("Marshal does not give back the input (err %v)", err)
		}
	})
}
