package dcap_test

import (
	"bytes"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"encoding/pem"
	"os"
	"testing"
	"time"

	"github.com/trustbound/trustbound/attest/dcap"
)

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// tdQuote is what TCB evaluation needs of a TDX quote v4, read at the
// offsets of Intel's TDX DCAP quote layout (header 48 bytes, TD report body
// 584 bytes, signature data: quote signature 64, attestation key 64,
// certification data type 6 holding the QE report certification data: QE
// report 384, its signature 64, QE authentication data, and certification
// data type 5, the PCK chain). The attest/tdx package parses quotes; this is
// only enough for dcap's tests.
type tdQuote struct {
	tdx   dcap.TDXTCB
	qe    dcap.QEReport
	chain []*x509.Certificate // as in the quote: leaf, PCK CA, root
}

func parseTDQuote(t testing.TB, b []byte) *tdQuote {
	t.Helper()
	le16 := func(off int) int { return int(binary.LittleEndian.Uint16(b[off:])) }
	le32 := func(off int) int { return int(binary.LittleEndian.Uint32(b[off:])) }
	if le16(0) != 4 || le32(4) != 0x81 {
		t.Fatalf("not a TDX quote v4: version %d, TEE type %#x", le16(0), le32(4))
	}
	var q tdQuote
	body := b[48 : 48+584]
	copy(q.tdx.TEETCBSVN[:], body[0:16])
	copy(q.tdx.MRSignerSEAM[:], body[64:112])
	copy(q.tdx.SEAMAttributes[:], body[112:120])
	sig := 48 + 584 + 4
	// Both vectors carry bytes after the quote (zero padding; a text
	// note): the attest/tdx parser judges framing, this reads the quote.
	if le32(48+584)+sig > len(b) {
		t.Fatal("signature data length")
	}
	cd := sig + 128
	if le16(cd) != 6 {
		t.Fatalf("certification data type %d, want 6", le16(cd))
	}
	qe := b[cd+6 : cd+6+384]
	copy(q.qe.MRSigner[:], qe[128:160])
	q.qe.ISVProdID = binary.LittleEndian.Uint16(qe[256:])
	q.qe.ISVSVN = binary.LittleEndian.Uint16(qe[258:])
	q.qe.MiscSelect = binary.LittleEndian.Uint32(qe[16:])
	copy(q.qe.Attributes[:], qe[48:64])
	off := cd + 6 + 384 + 64
	off += 2 + le16(off)
	if le16(off) != 5 {
		t.Fatalf("inner certification data type %d, want 5", le16(off))
	}
	rest := bytes.TrimRight(b[off+6:off+6+le32(off+2)], "\x00")
	for {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			break
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		q.chain = append(q.chain, c)
	}
	return &q
}

// verifiedChain verifies a quote's PCK chain to the Intel root at now, as a
// verifier does before evaluating, and returns it leaf to root.
func verifiedChain(t testing.TB, chain []*x509.Certificate, root *x509.Certificate, now time.Time) []*x509.Certificate {
	t.Helper()
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	roots := x509.NewCertPool()
	roots.AddCert(root)
	chains, err := chain[0].Verify(x509.VerifyOptions{Intermediates: inter, Roots: roots, CurrentTime: now,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	if err != nil {
		t.Fatal(err)
	}
	return chains[0]
}

func base64Std(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
