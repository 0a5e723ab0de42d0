package sgx_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/trustbound/trustbound/attest"
	"github.com/trustbound/trustbound/attest/sgx"
)

func TestVerifierFormat(t *testing.T) {
	if got := sgx.NewVerifier(sgx.Config{}).Format(); got != attest.FormatSGXQuoteV3 {
		t.Fatalf("Format() = %q", got)
	}
}

func TestFakeQuoteClaims(t *testing.T) {
	var configID [64]byte
	for i := range configID {
		configID[i] = byte(0xc0 + i)
	}
	tests := []struct {
		name string
		body sgx.ReportBody
	}{
		{"release", sgx.ReportBody{
			MREnclave: [32]byte{1, 2, 3, 31: 0xee}, MRSigner: [32]byte{9, 8, 7, 31: 0x5a},
			ISVProdID: 42, ISVSVN: 7, Attributes: sgx.Attributes{Flags: sgx.FlagInit | sgx.FlagMode64Bit, XFRM: 3},
		}},
		{"debug with everything set", sgx.ReportBody{
			CPUSVN: [16]byte{1, 2, 3, 15: 0xff}, MiscSelect: 0x1,
			MREnclave: [32]byte{0xde, 0xb0, 31: 1}, MRSigner: [32]byte{0xaa},
			ISVProdID: 0xffff, ISVSVN: 0xfffe, ConfigID: configID, ConfigSVN: 3,
			Attributes:   sgx.Attributes{Flags: sgx.FlagInit | sgx.FlagDebug | sgx.FlagMode64Bit | sgx.FlagKSS, XFRM: 0xe7},
			ISVExtProdID: [16]byte{0xe1, 15: 0xe2}, ISVFamilyID: [16]byte{0xf1, 15: 0xf2},
		}},
	}
	ca := newTestCA(t, true)
	v := sgx.NewVerifier(sgx.Config{Simulated: []*x509.Certificate{ca.root}})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := tt.body
			b.ReportData = attest.ReportDataFor([]byte("runtime data of " + tt.name))
			quote := ca.quote(t, b, nil)
			c, err := verify(v, quote, now, true)
			if err != nil {
				t.Fatal(err)
			}
			var hostData attest.Hex
			if b.ConfigID != ([64]byte{}) {
				hostData = b.ConfigID[:]
			}
			attrs := b.Attributes.Bytes()
			want := &attest.Claims{
				TEE:         attest.SGX,
				Format:      attest.FormatSGXQuoteV3,
				Simulated:   true,
				Measurement: b.MREnclave[:],
				Signer:      b.MRSigner[:],
				ProductID:   b.ISVProdID,
				SVN:         uint32(b.ISVSVN),
				Debug:       b.Attributes.Flags&sgx.FlagDebug != 0,
				HostData:    hostData,
				ReportData:  b.ReportData[:],
				// The TCB of the Intel PCK certificate whose extension the
				// test leaf carries; QE SVN from the fake QE report.
				TCB: attest.TCB{Components: map[string]uint64{
					"sgxtcbcomp01svn": 20, "sgxtcbcomp02svn": 20, "sgxtcbcomp03svn": 2, "sgxtcbcomp04svn": 4,
					"sgxtcbcomp05svn": 1, "sgxtcbcomp06svn": 128, "sgxtcbcomp07svn": 14, "sgxtcbcomp08svn": 0,
					"sgxtcbcomp09svn": 0, "sgxtcbcomp10svn": 0, "sgxtcbcomp11svn": 0, "sgxtcbcomp12svn": 0,
					"sgxtcbcomp13svn": 0, "sgxtcbcomp14svn": 0, "sgxtcbcomp15svn": 0, "sgxtcbcomp16svn": 0,
					"pcesvn": 13, "qesvn": 8,
				}},
				Platform: map[string]string{
					"attributes":      hex.EncodeToString(attrs[:]),
					"miscselect":      fmt.Sprintf("%08x", b.MiscSelect),
					"cpusvn":          hex.EncodeToString(b.CPUSVN[:]),
					"config_svn":      strconv.Itoa(int(b.ConfigSVN)),
					"isv_family_id":   hex.EncodeToString(b.ISVFamilyID[:]),
					"isv_ext_prod_id": hex.EncodeToString(b.ISVExtProdID[:]),
					"qe_svn":          "8",
					"pce_svn":         "13",
					"qe_vendor_id":    "939a7233f79c4ca9940a0db3957f0607",
					"qe_mrenclave":    strings.Repeat("00", 32),
					"qe_mrsigner":     strings.Repeat("00", 32),
					"qe_isv_prod_id":  "1",
					"qe_isv_svn":      "8",
					"fmspc":           "00906ed50000",
					"pce_id":          "0000",
					"sgx_type":        "0",
					"pck_ca":          "platform",
				},
			}
			assertClaims(t, c, want)

			if _, err := verify(v, quote, now, false); !errors.Is(err, attest.ErrSimulated) {
				t.Errorf("without AllowSimulated: err = %v, want ErrSimulated", err)
			}
			// A verifier without simulated roots refuses it as untrusted.
			if _, err := verify(sgx.NewVerifier(sgx.Config{}), quote, now, true); !errors.Is(err, attest.ErrChain) || errors.Is(err, attest.ErrSimulated) {
				t.Errorf("no simulated root configured: err = %v, want ErrChain", err)
			}
			// Configured as a real root, the same chain is not simulated.
			c, err = verify(sgx.NewVerifier(sgx.Config{Roots: []*x509.Certificate{ca.root}}), quote, now, false)
			if err != nil || c.Simulated {
				t.Errorf("test root as trusted root: claims %+v, err %v; want Simulated=false", c, err)
			}
			// An empty, non-nil Roots trusts nothing, not even Intel.
			if _, err := verify(sgx.NewVerifier(sgx.Config{Roots: []*x509.Certificate{}}), readTestdata(t, "quote.release.bin"), now, true); !errors.Is(err, attest.ErrChain) {
				t.Errorf("empty Roots: err = %v, want ErrChain", err)
			}
		})
	}
}

func assertClaims(t *testing.T, got, want *attest.Claims) {
	t.Helper()
	g, w := *got, *want
	if !maps.Equal(g.Platform, w.Platform) {
		for k := range maps.Keys(w.Platform) {
			if g.Platform[k] != w.Platform[k] {
				t.Errorf("Platform[%q] = %q, want %q", k, g.Platform[k], w.Platform[k])
			}
		}
		for k := range maps.Keys(g.Platform) {
			if _, ok := w.Platform[k]; !ok {
				t.Errorf("unexpected Platform[%q] = %q", k, g.Platform[k])
			}
		}
	}
	if !maps.Equal(g.TCB.Components, w.TCB.Components) {
		t.Errorf("TCB.Components = %v, want %v", g.TCB.Components, w.TCB.Components)
	}
	g.Platform, w.Platform, g.TCB.Components, w.TCB.Components = nil, nil, nil, nil
	gj, _ := json.Marshal(g)
	wj, _ := json.Marshal(w)
	if !bytes.Equal(gj, wj) {
		t.Errorf("claims\n got %s\nwant %s", gj, wj)
	}
}

// Offsets into a quote, from the quote v3 layout.
const (
	offBody      = sgx.HeaderSize
	offSigLen    = sgx.SignedSize
	offSig       = sgx.SignedSize + 4
	offAttKey    = offSig + 64
	offQEReport  = offSig + 128
	offQESig     = offSig + 512
	offAuthSize  = offSig + 576
	offAuthData  = offAuthSize + 2
	offCertType  = offAuthData + 32 // every quote here has 32 bytes of QE auth data
	offCertSize  = offCertType + 2
	offCertBytes = offCertSize + 4
)

type mutation struct {
	name string
	edit func([]byte) []byte
	want error
	msg  string // names the check that refuses
}

func flip(off int) func([]byte) []byte {
	return func(b []byte) []byte { b[off] ^= 0x01; return b }
}

func put16(off int, v uint16) func([]byte) []byte {
	return func(b []byte) []byte { binary.LittleEndian.PutUint16(b[off:], v); return b }
}

func add32(off int, d int) func([]byte) []byte {
	return func(b []byte) []byte {
		binary.LittleEndian.PutUint32(b[off:], uint32(int(binary.LittleEndian.Uint32(b[off:]))+d))
		return b
	}
}

// mutations applies to any quote of this package's vectors.
var mutations = []mutation{
	{"MRENCLAVE byte", flip(offBody + 64), attest.ErrSignature, "quote signature"},
	{"MRSIGNER byte", flip(offBody + 128 + 31), attest.ErrSignature, "quote signature"},
	{"report data byte", flip(offBody + 320 + 63), attest.ErrSignature, "quote signature"},
	{"header QE SVN", flip(8), attest.ErrSignature, "quote signature"},
	{"ISV signature byte", flip(offSig + 5), attest.ErrSignature, "quote signature"},
	{"attestation key byte", flip(offAttKey + 10), attest.ErrSignature, "attestation key is not"},
	{"QE report MRENCLAVE byte", flip(offQEReport + 64), attest.ErrSignature, "QE report signature"},
	{"QE report data byte", flip(offQEReport + 320), attest.ErrSignature, "QE report signature"},
	{"QE report signature byte", flip(offQESig + 40), attest.ErrSignature, "QE report signature"},
	{"QE auth data byte", flip(offAuthData + 3), attest.ErrSignature, "attestation key is not"},
	{"truncated by one byte", func(b []byte) []byte { return b[:len(b)-1] }, attest.ErrMalformed, "signature data length"},
	{"trailing byte", func(b []byte) []byte { return append(b, 0) }, attest.ErrMalformed, "signature data length"},
	{"header only", func(b []byte) []byte { return b[:sgx.HeaderSize] }, attest.ErrMalformed, "shorter than"},
	{"empty", func(b []byte) []byte { return nil }, attest.ErrMalformed, "shorter than"},
	{"version 2", put16(0, 2), attest.ErrMalformed, "version 2"},
	{"version 4", put16(0, 4), attest.ErrMalformed, "version 4"},
	{"key type 3 (ECDSA-384)", put16(2, 3), attest.ErrMalformed, "key type 3"},
	{"TEE type TDX", put16(4, 0x81), attest.ErrMalformed, "TEE type"},
	{"signature length +1", add32(offSigLen, 1), attest.ErrMalformed, "signature data length"},
	{"signature length -1", add32(offSigLen, -1), attest.ErrMalformed, "signature data length"},
	{"reserved byte in ISV report", flip(offBody + 20), attest.ErrMalformed, "ISV enclave report: reserved"},
	{"last reserved byte in ISV report", flip(offBody + 303), attest.ErrMalformed, "ISV enclave report: reserved"},
	{"reserved byte in QE report", flip(offQEReport + 100), attest.ErrMalformed, "QE report: reserved"},
	{"QE auth data size +1", put16(offAuthSize, 33), attest.ErrMalformed, "certification data size"},
	{"QE auth data size overrun", put16(offAuthSize, 0xffff), attest.ErrMalformed, "QE authentication data"},
	{"certification data size -1", add32(offCertSize, -1), attest.ErrMalformed, "certification data size"},
	{"certification data type 6", put16(offCertType, 6), attest.ErrMalformed, "type 6"},
	{"PEM armour broken", flip(offCertBytes + 2), attest.ErrMalformed, "outside PEM"},
}

func TestTamperedFakeQuote(t *testing.T) {
	ca := newTestCA(t, true)
	v := sgx.NewVerifier(sgx.Config{Simulated: []*x509.Certificate{ca.root}})
	orig := ca.quote(t, sgx.ReportBody{MREnclave: [32]byte{1}, MRSigner: [32]byte{2}, ReportData: [64]byte{3}}, nil)
	if _, err := verify(v, orig, now, true); err != nil {
		t.Fatalf("untampered: %v", err)
	}
	for _, m := range mutations {
		t.Run(m.name, func(t *testing.T) {
			_, err := verify(v, m.edit(bytes.Clone(orig)), now, true)
			if !errors.Is(err, m.want) || !strings.Contains(err.Error(), m.msg) {
				t.Fatalf("err = %v, want %v about %q", err, m.want, m.msg)
			}
		})
	}
}

func TestForeignChain(t *testing.T) {
	foreign, simulated := newTestCA(t, true), newTestCA(t, true)
	quote := foreign.quote(t, sgx.ReportBody{MREnclave: [32]byte{7}}, nil)
	v := sgx.NewVerifier(sgx.Config{Simulated: []*x509.Certificate{simulated.root}})
	for _, allow := range []bool{false, true} {
		_, err := verify(v, quote, now, allow)
		if !errors.Is(err, attest.ErrChain) || errors.Is(err, attest.ErrSimulated) {
			t.Errorf("AllowSimulated=%v: err = %v, want ErrChain and not ErrSimulated", allow, err)
		}
	}
	// Trusting the foreign root, the very same quote verifies: the refusal
	// above was the chain's alone.
	c, err := verify(sgx.NewVerifier(sgx.Config{Roots: []*x509.Certificate{foreign.root}}), quote, now, false)
	if err != nil {
		t.Fatal(err)
	}
	if c.Simulated || c.Measurement[0] != 7 {
		t.Errorf("claims %+v", c)
	}
}

func TestChecksNeedingAPCKKey(t *testing.T) {
	ca := newTestCA(t, true)
	v := sgx.NewVerifier(sgx.Config{Roots: []*x509.Certificate{ca.root}})
	for _, tt := range []struct {
		name string
		edit func(*sgx.Quote)
		want error
		msg  string
	}{
		{"report data upper half not zero", func(q *sgx.Quote) { q.Signature.QEReport.ReportData[63] = 1 },
			attest.ErrSignature, "attestation key is not"},
		{"report data binds another key", func(q *sgx.Quote) { q.Signature.QEReport.ReportData[0] ^= 1 },
			attest.ErrSignature, "attestation key is not"},
		{"attestation key not on the curve", func(q *sgx.Quote) {
			s := &q.Signature
			s.AttestationKey = [64]byte{1, 2, 3}
			h := sha256.Sum256(slices.Concat(s.AttestationKey[:], s.QEAuthData))
			copy(s.QEReport.ReportData[:32], h[:])
		}, attest.ErrSignature, "attestation key:"},
		{"no QE auth data", func(q *sgx.Quote) {
			s := &q.Signature
			s.QEAuthData = nil
			h := sha256.Sum256(s.AttestationKey[:])
			copy(s.QEReport.ReportData[:32], h[:])
		}, nil, ""},
		{"PPID certification data without a PCK certificate", func(q *sgx.Quote) {
			q.Signature.CertDataType, q.Signature.CertData = sgx.CertDataPPIDRSA3072, make([]byte, 384+20)
		}, attest.ErrChain, "type 3 (PPID, no PCK certificate) and the evidence supplies no PCK certificate"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := verify(v, ca.quote(t, sgx.ReportBody{}, tt.edit), now, false)
			if tt.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("err = %v, want %v about %q", err, tt.want, tt.msg)
			}
		})
	}
	t.Run("PCK leaf without SGX extension", func(t *testing.T) {
		bare := newTestCA(t, false)
		v := sgx.NewVerifier(sgx.Config{Roots: []*x509.Certificate{bare.root}})
		_, err := verify(v, bare.quote(t, sgx.ReportBody{}, nil), now, false)
		if !errors.Is(err, attest.ErrChain) || !strings.Contains(err.Error(), "not a PCK certificate") {
			t.Fatalf("err = %v, want ErrChain", err)
		}
	})
}

func TestPresentedRootMustBeTrustedRoot(t *testing.T) {
	ca := newTestCA(t, true)
	v := sgx.NewVerifier(sgx.Config{Simulated: []*x509.Certificate{ca.root}})
	q, err := sgx.ParseQuote(ca.quote(t, sgx.ReportBody{}, nil))
	if err != nil {
		t.Fatal(err)
	}
	// A self-signed impostor with the trusted root's name but another key.
	impostor, _ := mkCert(t, &x509.Certificate{
		Subject: ca.root.Subject, IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}, nil, nil)
	var leafAndCA []byte
	for _, der := range q.PCKChain[:2] {
		leafAndCA = append(leafAndCA, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	}
	for _, tt := range []struct {
		name  string
		chain []byte
		want  error
	}{
		{"impostor root", append(bytes.Clone(leafAndCA), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: impostor.Raw})...), attest.ErrChain},
		{"no root in the quote", leafAndCA, nil},
		{"leaf alone", leafAndCA[:bytes.LastIndex(leafAndCA, []byte("-----BEGIN"))], attest.ErrChain},
	} {
		t.Run(tt.name, func(t *testing.T) {
			quote := ca.quote(t, sgx.ReportBody{}, func(q *sgx.Quote) { q.Signature.CertData = tt.chain })
			_, err := verify(v, quote, now, true)
			if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestPCKValidity(t *testing.T) {
	ca := newTestCA(t, true)
	v := sgx.NewVerifier(sgx.Config{Simulated: []*x509.Certificate{ca.root}})
	fake := ca.quote(t, sgx.ReportBody{}, nil)
	real := readTestdata(t, "quote.release.bin")
	for _, tt := range []struct {
		name  string
		quote []byte
		at    time.Time
	}{
		{"simulated before its chain", fake, testNotBefore.Add(-time.Second)},
		{"simulated after its chain", fake, testNotAfter.Add(time.Second)},
		{"real before PCK notBefore", real, time.Date(2023, 2, 27, 19, 17, 9, 0, time.UTC)},
		{"real after PCK notAfter", real, time.Date(2030, 2, 27, 19, 17, 11, 0, time.UTC)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := verify(v, tt.quote, tt.at, true)
			if !errors.Is(err, attest.ErrChain) || errors.Is(err, attest.ErrSimulated) {
				t.Fatalf("err = %v, want ErrChain", err)
			}
		})
	}
	// Inside the validity, both verify.
	for _, at := range []time.Time{time.Date(2023, 2, 27, 19, 17, 11, 0, time.UTC), time.Date(2029, 12, 31, 0, 0, 0, 0, time.UTC)} {
		if _, err := verify(v, real, at, false); err != nil {
			t.Errorf("real at %s: %v", at, err)
		}
	}
	if _, err := verify(v, fake, testNotBefore, true); err != nil {
		t.Errorf("fake at its notBefore: %v", err)
	}
	// A chain verified (and cached) before is still judged at each time.
	for _, tt := range []struct {
		quote []byte
		at    time.Time
	}{{real, time.Date(2030, 2, 27, 19, 17, 11, 0, time.UTC)}, {fake, testNotAfter.Add(time.Second)}, {fake, testNotBefore.Add(-time.Second)}} {
		if _, err := verify(v, tt.quote, tt.at, true); !errors.Is(err, attest.ErrChain) {
			t.Errorf("after a success, at %s: err = %v, want ErrChain", tt.at, err)
		}
	}
}

func TestVerifyRefusesBadInput(t *testing.T) {
	v := sgx.NewVerifier(sgx.Config{})
	quote := readTestdata(t, "quote.release.bin")
	ctx := context.Background()
	if _, err := v.Verify(ctx, nil, attest.Options{Now: now}); !errors.Is(err, attest.ErrMalformed) {
		t.Errorf("nil evidence: %v", err)
	}
	if _, err := v.Verify(ctx, &attest.Evidence{Format: attest.FormatSNPReport, Data: quote}, attest.Options{Now: now}); !errors.Is(err, attest.ErrUnknownFormat) {
		t.Errorf("wrong format: %v", err)
	}
	if _, err := v.Verify(ctx, &attest.Evidence{Format: attest.FormatSGXQuoteV3, Data: quote}, attest.Options{}); err == nil {
		t.Error("zero time accepted")
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := v.Verify(cctx, &attest.Evidence{Format: attest.FormatSGXQuoteV3, Data: quote}, attest.Options{Now: now}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled context: %v", err)
	}
}

// enclaveInfo is the part of the Azure MAA sample's enclave.info.*.json
// that states what the quote holds.
type enclaveInfo struct {
	MrEnclaveHex       string
	MrSignerHex        string
	ProductIdHex       string
	SecurityVersion    int
	Attributes         uint64
	QuoteHex           string
	EnclaveHeldDataHex string
}

func TestRealQuotes(t *testing.T) {
	type expect struct {
		mrenclave, mrsigner string
		prodID              uint16
		svn                 uint32
		debug               bool
		reportData          [64]byte
		platform            map[string]string
	}
	fromJSON := func(name string) expect {
		var info enclaveInfo
		if err := json.Unmarshal(readTestdata(t, name), &info); err != nil {
			t.Fatal(err)
		}
		prod, err := hex.DecodeString(info.ProductIdHex)
		if err != nil || len(prod) != 16 {
			t.Fatalf("ProductIdHex %q", info.ProductIdHex)
		}
		held, err := hex.DecodeString(info.EnclaveHeldDataHex)
		if err != nil {
			t.Fatal(err)
		}
		var rd [64]byte
		h := sha256.Sum256(held)
		copy(rd[:], h[:])
		return expect{
			mrenclave:  strings.ToLower(info.MrEnclaveHex),
			mrsigner:   strings.ToLower(info.MrSignerHex),
			prodID:     binary.LittleEndian.Uint16(prod),
			svn:        uint32(info.SecurityVersion),
			debug:      info.Attributes&sgx.FlagDebug != 0,
			reportData: rd,
			platform:   map[string]string{"fmspc": "00906ed50000", "pck_ca": "processor", "pce_svn": "14", "qe_svn": "9"},
		}
	}
	var occlumRD [64]byte
	copy(occlumRD[:], "test")
	tests := []struct {
		file string
		want expect
	}{
		{"quote.release.bin", fromJSON("enclave.info.release.json")},
		{"quote.debug.bin", fromJSON("enclave.info.debug.json")},
		{"occlum_quote_v3.dat", expect{
			mrenclave: "8f173e4613ff05c52aaf04162d234edae8c9977eae47eb2299ae16a553011c68",
			mrsigner:  "83d719e77deaca1470f6baf62a4d774303c899db69020f9c70ee1dfc08c7ce9e",
			prodID:    0, svn: 0, debug: true, reportData: occlumRD,
			platform: map[string]string{
				"fmspc": "00606a000000", "pck_ca": "platform", "pce_svn": "13", "qe_svn": "8",
				// The certificate's OCTET STRING as DER holds it; trustee's
				// parse_sgx_claims prints it byte-reversed (7a3a6941…c0c8).
				"platform_instance_id": "c8c0cfb23d3dd90b06d55c0641693a7a", "sgx_type": "1",
				"cpusvn": "06060c0cffff00000000000000000000", "miscselect": "00000001",
				"attributes": "0700000000000000e700000000000000",
			},
		}},
	}
	// The JSON's own checks: MAA sample facts, stated in SOURCES.
	if w := tests[0].want; w.mrenclave != "d37d983a85d63fb49649610e2eba0930ecdbff6d113aca3ff3fc7261696c0134" || w.prodID != 1 || w.svn != 1 || w.debug {
		t.Fatalf("enclave.info.release.json reads %+v", w)
	}
	if w := tests[1].want; !w.debug || !strings.HasPrefix(w.mrenclave, "3e2df98f") {
		t.Fatalf("enclave.info.debug.json reads %+v", w)
	}
	// Simulated roots configured beside Intel's change nothing for real quotes.
	v := sgx.NewVerifier(sgx.Config{Simulated: []*x509.Certificate{newTestCA(t, true).root}})
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			quote := readTestdata(t, tt.file)
			for _, allow := range []bool{false, true} {
				c, err := verify(v, quote, now, allow)
				if err != nil {
					t.Fatalf("AllowSimulated=%v: %v", allow, err)
				}
				w := tt.want
				if c.Simulated || c.TEE != attest.SGX || c.Measurement.String() != w.mrenclave || c.Signer.String() != w.mrsigner ||
					c.ProductID != w.prodID || c.SVN != w.svn || c.Debug != w.debug || !bytes.Equal(c.ReportData, w.reportData[:]) ||
					c.HostData != nil || c.TCB.Evaluated {
					t.Errorf("claims %+v\nwant %+v", c, w)
				}
				for k, v := range w.platform {
					if c.Platform[k] != v {
						t.Errorf("Platform[%q] = %q, want %q", k, c.Platform[k], v)
					}
				}
			}
			for _, m := range mutations {
				if _, err := verify(v, m.edit(bytes.Clone(quote)), now, false); !errors.Is(err, m.want) || !strings.Contains(err.Error(), m.msg) {
					t.Errorf("%s: err = %v, want %v about %q", m.name, err, m.want, m.msg)
				}
			}
		})
	}
}

func TestMAAReportDataBindsEnclaveHeldData(t *testing.T) {
	for _, f := range []string{"release", "debug"} {
		c, err := verify(sgx.NewVerifier(sgx.Config{}), readTestdata(t, "quote."+f+".bin"), now, false)
		if err != nil {
			t.Fatal(err)
		}
		held, _ := hex.DecodeString("010203040506")
		if err := attest.BindsRuntimeData(c.ReportData, held); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}

func TestRegistry(t *testing.T) {
	ca := newTestCA(t, true)
	r, err := attest.NewRegistry(sgx.NewVerifier(sgx.Config{Simulated: []*x509.Certificate{ca.root}}))
	if err != nil {
		t.Fatal(err)
	}
	ev := &attest.Evidence{Format: attest.FormatSGXQuoteV3, Data: ca.quote(t, sgx.ReportBody{}, nil)}
	c, err := r.Verify(context.Background(), ev, attest.Options{Now: now, AllowSimulated: true, SkipCollateral: true})
	if err != nil || c.Format != attest.FormatSGXQuoteV3 || !c.Simulated {
		t.Fatalf("claims %+v, err %v", c, err)
	}
}
