package simtee

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/trustbound/trustbound/attest"
	"github.com/trustbound/trustbound/attest/dcap"
	"github.com/trustbound/trustbound/attest/sgx"
)

// sgxSeedPath is the simulated quote that attest/sgx fuzzes as a seed.
const sgxSeedPath = "../sgx/testdata/simtee_quote.bin"

var sgxUpdateSeed = flag.Bool("sgx.update-seed", false, "rewrite "+sgxSeedPath+" from the SGX attester")

var sgxNow = time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)

func sgxVerifier() *sgx.Verifier {
	return sgx.NewVerifier(sgx.Config{Simulated: []*x509.Certificate{SGXRoot()}, SimulatedCollateral: SGXCollateralSource()})
}

func sgxVerify(t *testing.T, quote []byte, at time.Time, allow bool) (*attest.Claims, error) {
	t.Helper()
	return sgxVerifier().Verify(context.Background(), &attest.Evidence{Format: attest.FormatSGXQuoteV3, Data: quote},
		attest.Options{Now: at, AllowSimulated: allow})
}

func sgxAttest(t *testing.T, e SGX, rd [64]byte) []byte {
	t.Helper()
	ev, err := e.Attest(context.Background(), rd)
	if err != nil {
		t.Fatal(err)
	}
	if ev.Format != attest.FormatSGXQuoteV3 || ev.Certs != nil || ev.RuntimeData != nil {
		t.Fatalf("evidence %+v", ev)
	}
	return ev.Data
}

func TestSGXTEE(t *testing.T) {
	for _, a := range []attest.Attester{SGX{}, &SGX{}} {
		if a.TEE() != attest.SGX {
			t.Errorf("TEE() = %q", a.TEE())
		}
	}
}

func TestSGXAttestVerifies(t *testing.T) {
	var configID [64]byte
	for i := range configID {
		configID[i] = byte(i + 1)
	}
	for _, e := range []SGX{
		{MREnclave: [32]byte{1, 31: 2}, MRSigner: [32]byte{3, 31: 4}, ProductID: 5, SVN: 6},
		{MREnclave: [32]byte{0xaa}, MRSigner: [32]byte{0xbb}, ProductID: 0xffff, SVN: 0xffff, Debug: true,
			ConfigID: configID, ConfigSVN: 9, ISVExtProdID: [16]byte{0xe0, 15: 0xe1}, ISVFamilyID: [16]byte{0xf0, 15: 0xf1}},
	} {
		rd := attest.ReportDataFor([]byte("simtee SGX"))
		quote := sgxAttest(t, e, rd)
		c, err := sgxVerify(t, quote, sgxNow, true)
		if err != nil {
			t.Fatal(err)
		}
		var hostData []byte
		if e.ConfigID != ([64]byte{}) {
			hostData = e.ConfigID[:]
		}
		if c.TEE != attest.SGX || c.Format != attest.FormatSGXQuoteV3 || !c.Simulated ||
			!bytes.Equal(c.Measurement, e.MREnclave[:]) || !bytes.Equal(c.Signer, e.MRSigner[:]) ||
			c.ProductID != e.ProductID || c.SVN != uint32(e.SVN) || c.Debug != e.Debug ||
			!bytes.Equal(c.HostData, hostData) || !bytes.Equal(c.ReportData, rd[:]) ||
			!c.TCB.Evaluated || c.TCB.Status != "UpToDate" || c.TCB.Advisories != nil || !c.RevocationChecked {
			t.Errorf("claims %+v for %+v", c, e)
		}
		flags := "05"
		if e.Debug {
			flags = "07"
		}
		wantPlatform := map[string]string{
			"attributes":      flags + "00000000000000" + "0700000000000000",
			"miscselect":      "00000000",
			"cpusvn":          hex.EncodeToString(sgxSimCPUSVN[:]),
			"config_svn":      strconv.Itoa(int(e.ConfigSVN)),
			"isv_ext_prod_id": hex.EncodeToString(e.ISVExtProdID[:]),
			"isv_family_id":   hex.EncodeToString(e.ISVFamilyID[:]),
			"qe_svn":          "8",
			"pce_svn":         "13",
			"qe_vendor_id":    "939a7233f79c4ca9940a0db3957f0607",
			"qe_isv_prod_id":  "1",
			"qe_isv_svn":      "8",
			"fmspc":           "00c0ffee0000",
			"pce_id":          "0000",
			"sgx_type":        "0",
			"pck_ca":          "processor",
			// From the simulated collateral (SGXCollateralSource).
			"platform_tcb_status":        "UpToDate",
			"qe_tcb_status":              "UpToDate",
			"tcb_date":                   "2025-01-01T00:00:00Z",
			"tcb_evaluation_data_number": "1",
		}
		for k, v := range wantPlatform {
			if c.Platform[k] != v {
				t.Errorf("Platform[%q] = %q, want %q", k, c.Platform[k], v)
			}
		}
		for i, svn := range sgxSimCPUSVN {
			if got := c.TCB.Components[fmt.Sprintf("sgxtcbcomp%02dsvn", i+1)]; got != uint64(svn) {
				t.Errorf("TCB component %d = %d, want %d", i+1, got, svn)
			}
		}
		if c.TCB.Components["pcesvn"] != sgxSimPCESVN || c.TCB.Components["qesvn"] != sgxSimQESVN {
			t.Errorf("TCB components %v", c.TCB.Components)
		}

		if _, err := sgxVerify(t, quote, sgxNow, false); !errors.Is(err, attest.ErrSimulated) {
			t.Errorf("without AllowSimulated: err = %v, want ErrSimulated", err)
		}
		// Intel's root alone does not accept it.
		_, err = sgx.NewVerifier(sgx.Config{}).Verify(context.Background(),
			&attest.Evidence{Format: attest.FormatSGXQuoteV3, Data: quote}, attest.Options{Now: sgxNow, AllowSimulated: true})
		if !errors.Is(err, attest.ErrChain) {
			t.Errorf("Intel root only: err = %v, want ErrChain", err)
		}
	}
}

func TestSGXTampered(t *testing.T) {
	quote := sgxAttest(t, SGX{MREnclave: [32]byte{1}}, [64]byte{2})
	const sig = 48 + 384 + 4
	for _, tt := range []struct {
		name string
		off  int
		msg  string
	}{
		{"MRENCLAVE", 48 + 64, "quote signature"},
		{"report data", 48 + 320, "quote signature"},
		{"QE report", sig + 128 + 64, "QE report signature"},
		{"attestation key", sig + 64, "attestation key"},
	} {
		b := bytes.Clone(quote)
		b[tt.off] ^= 0x80
		if _, err := sgxVerify(t, b, sgxNow, true); !errors.Is(err, attest.ErrSignature) || !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("%s: err = %v, want ErrSignature about %q", tt.name, err, tt.msg)
		}
	}
	for _, at := range []time.Time{time.Date(2024, 12, 31, 23, 59, 59, 0, time.UTC), time.Date(2050, 1, 1, 0, 0, 0, 0, time.UTC)} {
		if _, err := sgxVerify(t, quote, at, true); !errors.Is(err, attest.ErrChain) {
			t.Errorf("at %s: err = %v, want ErrChain", at, err)
		}
	}
}

// TestSGXQuoteLayout reads the quote at the spec's offsets, independently of
// attest/sgx's parser.
func TestSGXQuoteLayout(t *testing.T) {
	e := SGX{MREnclave: [32]byte{0x11}, MRSigner: [32]byte{0x22}, ProductID: 0x0102, SVN: 0x0304, Debug: true,
		ConfigID: [64]byte{0x33}, ConfigSVN: 0x0506, ISVExtProdID: [16]byte{0x44}, ISVFamilyID: [16]byte{0x55}}
	rd := [64]byte{0x66, 63: 0x77}
	b := sgxAttest(t, e, rd)
	le16 := func(off int) uint16 { return binary.LittleEndian.Uint16(b[off:]) }
	le32 := func(off int) uint32 { return binary.LittleEndian.Uint32(b[off:]) }
	le64 := func(off int) uint64 { return binary.LittleEndian.Uint64(b[off:]) }
	if le16(0) != 3 || le16(2) != 2 || le32(4) != 0 || le16(8) != sgxSimQESVN || le16(10) != sgxSimPCESVN ||
		!bytes.Equal(b[12:28], sgxSimIntelQEVendorID[:]) || !allZero(b[28:48]) {
		t.Errorf("header % x", b[:48])
	}
	r := 48
	if !bytes.Equal(b[r:r+16], sgxSimCPUSVN[:]) || le32(r+16) != 0 || !allZero(b[r+20:r+32]) ||
		!bytes.Equal(b[r+32:r+48], e.ISVExtProdID[:]) || le64(r+48) != 0x7 || le64(r+56) != 0x7 ||
		!bytes.Equal(b[r+64:r+96], e.MREnclave[:]) || !allZero(b[r+96:r+128]) ||
		!bytes.Equal(b[r+128:r+160], e.MRSigner[:]) || !allZero(b[r+160:r+192]) ||
		!bytes.Equal(b[r+192:r+256], e.ConfigID[:]) || le16(r+256) != 0x0102 || le16(r+258) != 0x0304 ||
		le16(r+260) != 0x0506 || !allZero(b[r+262:r+304]) || !bytes.Equal(b[r+304:r+320], e.ISVFamilyID[:]) ||
		!bytes.Equal(b[r+320:r+384], rd[:]) {
		t.Errorf("ISV report body % x", b[r:r+384])
	}
	s := 432 + 4
	if int(le32(432)) != len(b)-s {
		t.Fatalf("signature data length %d, %d bytes follow", le32(432), len(b)-s)
	}
	attKey, qe := b[s+64:s+128], b[s+128:s+512]
	authLen := int(le16(s + 576))
	auth := b[s+578 : s+578+authLen]
	bind := sha256.Sum256(slices.Concat(attKey, auth))
	if !bytes.Equal(qe[320:352], bind[:]) || !allZero(qe[352:384]) {
		t.Error("QE report data does not bind the attestation key")
	}
	if binary.LittleEndian.Uint16(qe[256:]) != 1 || binary.LittleEndian.Uint16(qe[258:]) != sgxSimQESVN ||
		binary.LittleEndian.Uint64(qe[48:]) != 0x15 {
		t.Errorf("QE report % x", qe)
	}
	c := s + 578 + authLen
	if le16(c) != 5 || int(le32(c+2)) != len(b)-c-6 || b[len(b)-1] != 0 {
		t.Fatalf("certification data type %d size %d", le16(c), le32(c+2))
	}
	var cns []string
	for rest := b[c+6 : len(b)-1]; ; {
		var blk *pem.Block
		if blk, rest = pem.Decode(rest); blk == nil {
			break
		}
		cert, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		cns = append(cns, cert.Subject.CommonName)
	}
	want := []string{"trustbound SIMULATED SGX PCK Certificate", "trustbound SIMULATED PCK Processor CA", "trustbound SIMULATED SGX Root CA"}
	if !slices.Equal(cns, want) {
		t.Errorf("chain %q, want %q", cns, want)
	}
	// attest/sgx parses it and serialises it back unchanged.
	q, err := sgx.ParseQuote(b)
	if err != nil {
		t.Fatal(err)
	}
	if out, err := q.Marshal(); err != nil || !bytes.Equal(out, b) {
		t.Errorf("Marshal round trip: %v", err)
	}
}

func allZero(b []byte) bool { return !slices.ContainsFunc(b, func(c byte) bool { return c != 0 }) }

func TestSGXFreshAttestationKey(t *testing.T) {
	a, b := sgxAttest(t, SGX{}, [64]byte{}), sgxAttest(t, SGX{}, [64]byte{})
	key := func(q []byte) []byte { return q[436+64 : 436+128] }
	if bytes.Equal(key(a), key(b)) {
		t.Error("two quotes share an attestation key")
	}
}

func TestSGXCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := (SGX{}).Attest(ctx, [64]byte{}); !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v", err)
	}
}

func TestSGXRoot(t *testing.T) {
	r := SGXRoot()
	if r.Subject.CommonName != "trustbound SIMULATED SGX Root CA" || !r.IsCA || r.CheckSignatureFrom(r) != nil {
		t.Errorf("root %v", r.Subject)
	}
	if _, ok := r.PublicKey.(*ecdsa.PublicKey); !ok {
		t.Errorf("root key %T", r.PublicKey)
	}
}

// TestSGXEmbeddedPCK checks the embedded chain against the platform values
// Attest writes, and every key file in intel/ against its certificate.
func TestSGXEmbeddedPCK(t *testing.T) {
	certs := map[string]*x509.Certificate{}
	for _, name := range []string{"sgx_root_ca", "sgx_pck_processor_ca", "sgx_pck", "sgx_tcb_signing"} {
		cb, err := os.ReadFile("intel/" + name + ".pem")
		if err != nil {
			t.Fatal(err)
		}
		blk, _ := pem.Decode(cb)
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		kb, err := os.ReadFile("intel/" + name + ".key.pem")
		if err != nil {
			t.Fatal(err)
		}
		blk, _ = pem.Decode(kb)
		k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		if ek, ok := k.(*ecdsa.PrivateKey); !ok || !ek.PublicKey.Equal(c.PublicKey) {
			t.Errorf("intel/%s.key.pem is not the key of its certificate", name)
		}
		if !strings.Contains(c.Subject.CommonName, "SIMULATED") ||
			!c.NotBefore.Equal(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)) ||
			!c.NotAfter.Equal(time.Date(2049, 12, 31, 23, 59, 59, 0, time.UTC)) {
			t.Errorf("%s: %s, %s..%s", name, c.Subject, c.NotBefore, c.NotAfter)
		}
		certs[name] = c
	}
	if !certs["sgx_root_ca"].Equal(SGXRoot()) {
		t.Error("SGXRoot is not intel/sgx_root_ca.pem")
	}
	for issuer, file := range map[string]string{"sgx_root_ca": "intel/sgx_root_ca.crl.pem", "sgx_pck_processor_ca": "intel/sgx_pck_processor_ca.crl.pem"} {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		crl, err := dcap.ParseCRL(b)
		if err != nil {
			t.Fatal(err)
		}
		if crl.CheckSignatureFrom(certs[issuer]) != nil || len(crl.RevokedCertificateEntries) != 0 ||
			!crl.ThisUpdate.Equal(sgxSimChainStart) || !crl.NextUpdate.Equal(sgxSimChainEnd) {
			t.Errorf("%s: not an empty CRL of %s valid as long as the chain", file, issuer)
		}
	}
	if certs["sgx_tcb_signing"].CheckSignatureFrom(certs["sgx_root_ca"]) != nil {
		t.Error("the TCB signing certificate is not issued by the simulated root")
	}
	x, err := sgx.ParsePCKExtensions(certs["sgx_pck"])
	if err != nil {
		t.Fatal(err)
	}
	if x.TCB.CPUSVN != sgxSimCPUSVN || x.TCB.PCESVN != sgxSimPCESVN || [16]byte(x.TCB.CompSVN) != sgxSimCPUSVN ||
		x.FMSPC != [6]byte{0x00, 0xc0, 0xff, 0xee, 0x00, 0x00} || x.PCEID != [2]byte{} || x.SGXType != sgx.SGXTypeStandard {
		t.Errorf("PCK SGX extension %+v", x)
	}
}

// TestSGXSeedQuote keeps attest/sgx's fuzz seed a genuine quote of this
// attester: go test ./attest/simtee -run TestSGXSeedQuote -sgx.update-seed
// rewrites it.
func TestSGXSeedQuote(t *testing.T) {
	if *sgxUpdateSeed {
		e := SGX{
			MREnclave: sha256.Sum256([]byte("trustbound simtee fuzz seed enclave")),
			MRSigner:  sha256.Sum256([]byte("trustbound simtee fuzz seed signer")),
			ProductID: 1, SVN: 2, Debug: true, ConfigID: [64]byte{0xc0, 63: 0xf1}, ConfigSVN: 3,
		}
		q := sgxAttest(t, e, attest.ReportDataFor([]byte("trustbound simtee fuzz seed")))
		if err := os.WriteFile(sgxSeedPath, q, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	q, err := os.ReadFile(sgxSeedPath)
	if err != nil {
		t.Fatal(err)
	}
	c, err := sgxVerify(t, q, sgxNow, true)
	if err != nil {
		t.Fatalf("%s no longer verifies (chain regenerated?): rerun with -sgx.update-seed: %v", sgxSeedPath, err)
	}
	if !c.Simulated || !c.Debug || c.ProductID != 1 || c.SVN != 2 {
		t.Errorf("claims %+v", c)
	}
}

// TestSGXCollateral checks the simulated collateral: a realistic 30-day
// set from SGXCollateral, the long-lived source, and that neither vouches
// for anything but the simulated chain.
func TestSGXCollateral(t *testing.T) {
	quote := sgxAttest(t, SGX{MREnclave: [32]byte{9}}, [64]byte{1})
	ev := &attest.Evidence{Format: attest.FormatSGXQuoteV3, Data: quote}
	issued := time.Date(2026, 3, 1, 12, 30, 15, 500, time.UTC)
	col, err := SGXCollateral(issued)
	if err != nil {
		t.Fatal(err)
	}
	tcb, err := dcap.ParseTCBInfo(col.TCBInfo)
	if err != nil {
		t.Fatal(err)
	}
	if !tcb.IssueDate.Equal(issued.Truncate(time.Second)) || !tcb.NextUpdate.Equal(tcb.IssueDate.AddDate(0, 0, 30)) ||
		tcb.FMSPC != sgxSimFMSPC || tcb.TCBLevels[1].AdvisoryIDs[0] != SGXSimulatedAdvisory {
		t.Errorf("TCB info %+v", tcb)
	}
	v := sgx.NewVerifier(sgx.Config{Simulated: []*x509.Certificate{SGXRoot()}, SimulatedCollateral: dcap.NewStaticSource(col)})
	for _, tt := range []struct {
		at   time.Time
		want string // "" for UpToDate
	}{
		{issued, ""},
		{issued.AddDate(0, 0, 30).Add(-time.Second), ""},
		{issued.AddDate(0, 0, 30).Add(time.Second), "tcbInfo has expired"},
		{issued.Add(-time.Second), "tcbInfo is not yet valid"},
	} {
		c, err := v.Verify(context.Background(), ev, attest.Options{Now: tt.at, AllowSimulated: true})
		switch {
		case tt.want == "" && (err != nil || c.TCB.Status != "UpToDate"):
			t.Errorf("at %s: claims %+v, err %v", tt.at, c, err)
		case tt.want != "" && (!errors.Is(err, dcap.ErrCollateral) || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("at %s: err = %v, want ErrCollateral about %q", tt.at, err, tt.want)
		}
	}
	// The real-collateral slot never serves a simulated quote.
	v = sgx.NewVerifier(sgx.Config{Simulated: []*x509.Certificate{SGXRoot()}, Collateral: SGXCollateralSource()})
	if _, err := v.Verify(context.Background(), ev, attest.Options{Now: sgxNow, AllowSimulated: true}); !errors.Is(err, dcap.ErrCollateral) {
		t.Errorf("simulated quote with only Config.Collateral: err = %v, want ErrCollateral", err)
	}
	// Signatures and chain only still verify it, unevaluated.
	c, err := v.Verify(context.Background(), ev, attest.Options{Now: sgxNow, AllowSimulated: true, SkipCollateral: true})
	if err != nil || c.TCB.Evaluated || c.RevocationChecked {
		t.Errorf("SkipCollateral: claims %+v, err %v", c, err)
	}
}
