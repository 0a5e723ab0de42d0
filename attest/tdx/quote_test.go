package tdx_test

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"testing"

	"github.com/trustbound/trustbound/attest"
	"github.com/trustbound/trustbound/attest/tdx"
)

// realQuote is a real quote of testdata and what is known of it
// (PROVENANCE.md; full values as this package and go-tdx-guest's abi read
// them).
type realQuote struct {
	file              string
	version, bodyType uint16
	padding           int
	fmspc             string
	debug             bool
	mrtd, reportData  string
	rtmr0, mrconfigid string
}

const zero48 = "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"

var realQuotes = []realQuote{
	{file: "dcap-qvl-tdx_quote", version: 4, bodyType: 2, padding: 70, fmspc: "b0c06f000000",
		mrtd:       "91eb2b44d141d4ece09f0c75c2c53d247a3c68edd7fafe8a3520c942a604a407de03ae6dc5f87f27428b2538873118b7",
		reportData: "9a9d48e7f6799642d3d1b34e1e5e1742d4bb02dd6ddd551862c1211d35c304f9eca3efdbb481601c163cf52493d6e44aed55d51ec39b7e518fadb92c2b523f20",
		rtmr0:      "44c0197b39157fdd7a4dcc44767f9d6b0bb3977c7a8e347b8492f827fe9d9e5c48aca29b220b80b6a540cf994b9bc9c0", mrconfigid: zero48},
	{file: "dcap-qvl-tdx_quote_outdated", version: 5, bodyType: 3, fmspc: "90c06f000000",
		mrtd:       "273828c46252fcbdd8ad2dd907130222b03466d52a2911d70c1a5950895d6bd1ae451d382d5a9b1b4c0ed0e5ae9a3dbd",
		reportData: "d2142b643598eb5fae2bc8529dd79a558b29f868ccbb6531cb28dab9dce477280000000000000000000000000000000000000000000000000000000000000000",
		rtmr0:      zero48, mrconfigid: zero48},
	{file: "gotdxguest-cos113-quote.dat", version: 4, bodyType: 2, padding: 3065, fmspc: "00806f050000",
		mrtd:       "dae67181d3d65e073ad8f95b7907d5e927bfe9761c9ff3e9b89734a45d8954dba41394c7717cb2735396c1d04231f94a",
		reportData: zero48 + "00000000000000000000000000000000",
		rtmr0:      "3fa2f61f395b7f5feefb4ec2df61297f109ad8abcd6410c1b7df60f21f37b19297fc35e544039c7e1edece752afd17f6", mrconfigid: zero48},
	{file: "gotdxguest-quote_v5_sample.dat", version: 5, bodyType: 3, fmspc: "90c06f000000",
		mrtd:       "7348651a34b2d2d3462822e3a750ec6110125f36757c78480bbfc69cc0d21fb001a1ced3ee19747dda8f750c3bc8f876",
		reportData: "945eaacf5abc1f719d8666a942fda03d1edcb4490277396093dc5a5289ab9f1e094aed63060cd4a4933a4dd537ed1255c9c79ecb3ed82cd1b486233e31c25c3a",
		rtmr0:      "5c8daf76063a71ac8fcef4067564661fc682ed7944c7a5d21dbbced02f61ceff4ba0678c6aef3bdae8cbc614cec24619", mrconfigid: zero48},
	{file: "oasis-core-quote_v4_tdx_ecdsa_p256.bin", version: 4, bodyType: 2, fmspc: "c0806f000000",
		mrtd:       "91eb2b44d141d4ece09f0c75c2c53d247a3c68edd7fafe8a3520c942a604a407de03ae6dc5f87f27428b2538873118b7",
		reportData: "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e",
		rtmr0:      "1a85265426a60c11b093382a7a2a0a5a18e242c0167891fd12bfa7badfa4c700bdc16fc0637b52f94dd76b063adb1072", mrconfigid: zero48},
	{file: "oasis-core-quote_v4_tdx_ecdsa_p256_out_of_date.bin", version: 4, bodyType: 2, fmspc: "50806f000000",
		mrtd:       "6363b8043668a3ad953278e10389574d326c6749fb78aa810ecd9336923db86f22fc00b8dcd404bc10d5e119d7215cbb",
		reportData: "6c62dec1b8191749a31dab490be532a35944dea47caef1f980863993d9899545eb7406a38d1eed313b987a467dacead6f0c87a6d766c66f6f29f8acb281f1113",
		rtmr0:      "2927da70461cd63266f43230cc1849c03ef25ebe490062a801d8fcc80af42976823adf08f833c1e50b51779c6593f32a", mrconfigid: zero48},
	{file: "trustee-tdx_quote_4.dat", version: 4, bodyType: 2, fmspc: "50806f000000", debug: true,
		mrtd:       "705ee9381b8633a9fbe532b52345e8433343d2868959f57889d84ca377c395b689cac1599ccea1b7d420483a9ce5f031",
		reportData: "7c71fe2c86eff65a7cf8dbc22b3275689fd0464a267baced1bf94fc1324656aeb755da3d44d098c0c87382f3a5f85b45c8a28fee1d3bdb38342bf96671501429",
		rtmr0:      "e940da7c2712d2790e2961e00484f4fa8e6f9eed71361655ae22699476b14f9e63867eb41edd4b480fef0c59f496b288", mrconfigid: zero48},
	{file: "trustee-tdx_quote_5.dat", version: 5, bodyType: 3, fmspc: "90c06f000000",
		mrtd:       "dfba221b48a22af8511542ee796603f37382800840dcd978703909bf8e64d4c8a1e9de86e7c9638bfcba422f3886400a",
		reportData: "6d6ab13b046cff606ac0074be13981b07b6325dba10b5facc96febf551c0c3be2b75f92fe1f88f4bb996969ad0174b4b7a70261b7b85c844f4b33a4674fd049f",
		rtmr0:      "9b529f3689e2e8ebb899e9abbbc3dab394d6545e8cdb28a2abb9cc2f377b83a65c01ba56b824cd3ee885df20051f5128", mrconfigid: zero48},
	{file: "trustee-az-td-quote.bin", version: 4, bodyType: 2, padding: 70, fmspc: "00806f050000",
		mrtd:       "024a32b070383331181619fa387cb4d55d1e38879f989933055ccad5bc2db795d1737b66205949d15469dc8c1ba7ab7b",
		reportData: "9734504f161d104c74e3165c15f779b06a9bb40dfa71937817d7eee68e593839" + zero48[:64],
		rtmr0:      zero48, mrconfigid: zero48},
	{file: "trustee-tdx_quote_6.dat", version: 4, bodyType: 2, padding: 70, fmspc: "00a06d080000",
		mrtd:       "21e8dead92d6c69d7cbba79816686c03a48485c7df0c11f6f04792d5e1d378f6b8c46615ba6946adccac6becffbb1e88",
		reportData: "26cae1c77185617fb6a03fc29bf1f924596e52352b9b7594940b576ae126cd4a570cc3202a900c5d19a6eb0a95b32cfd00000000000000000000000000000000",
		rtmr0:      "395aefe7bac15b24c40f1cd7ba6f8fa48732be5c56c61485ed3cd9c8b16cce8ece64c331b99ce36d96605135c753aaa2",
		mrconfigid: "889abf4718f037e38d74464c11e7c91a6e9890b5546409e1e7df9de7a51ca93152bf847bd2440328e90adb18b150ed67"},
}

// sprQuote is go-tdx-guest's Sapphire Rapids sample as a verifier may see
// it: its file with the 39-byte text go-tdx-guest appended for its own
// tests ("\nextra bytes(only for testing purpose)\n") cut off.
func sprQuote(t testing.TB) []byte {
	t.Helper()
	b := readTestdata(t, "gotdxguest-spr-quote_v4.dat")
	const extra = "\nextra bytes(only for testing purpose)\n"
	if !bytes.HasSuffix(b, []byte(extra)) {
		t.Fatal("the SPR sample does not end with go-tdx-guest's test text")
	}
	return b[:len(b)-len(extra)]
}

func mustParse(t testing.TB, b []byte) *tdx.Quote {
	t.Helper()
	q, err := tdx.ParseQuote(b)
	if err != nil {
		t.Fatal(err)
	}
	return q
}

func TestParseRealQuotes(t *testing.T) {
	for _, rq := range realQuotes {
		t.Run(rq.file, func(t *testing.T) {
			b := readTestdata(t, rq.file)
			q := mustParse(t, b)
			if q.Header.Version != rq.version || q.BodyType != rq.bodyType || q.Padding != rq.padding {
				t.Errorf("version %d body type %d padding %d", q.Header.Version, q.BodyType, q.Padding)
			}
			if q.Header.TEEType != tdx.TEETypeTDX || q.Header.AttestationKeyType != tdx.KeyTypeECDSAP256 {
				t.Errorf("header %+v", q.Header)
			}
			if got := hex.EncodeToString(q.Header.QEVendorID[:]); got != "939a7233f79c4ca9940a0db3957f0607" {
				t.Errorf("QE vendor ID %s, want Intel's", got)
			}
			b2 := &q.Body
			for _, f := range []struct{ name, got, want string }{
				{"MRTD", hex.EncodeToString(b2.MRTD[:]), rq.mrtd},
				{"REPORTDATA", hex.EncodeToString(b2.ReportData[:]), rq.reportData},
				{"RTMR0", hex.EncodeToString(b2.RTMR[0][:]), rq.rtmr0},
				{"MRCONFIGID", hex.EncodeToString(b2.MRConfigID[:]), rq.mrconfigid},
			} {
				if f.got != f.want {
					t.Errorf("%s %s, want %s", f.name, f.got, f.want)
				}
			}
			if b2.Debug() != rq.debug {
				t.Errorf("debug %v", b2.Debug())
			}
			if len(q.PCKChain) != 3 {
				t.Errorf("%d certificates in the PCK chain", len(q.PCKChain))
			}
			// The signed ranges: header and body, with the version 5 body
			// descriptor; the QE report.
			wantSigned := tdx.HeaderSize + tdx.BodySize10
			if rq.bodyType == tdx.BodyTypeTD15 {
				wantSigned = tdx.HeaderSize + 6 + tdx.BodySize15
			}
			if len(q.SignedByAttestationKey) != wantSigned || !bytes.Equal(q.SignedByAttestationKey, b[:wantSigned]) || len(q.SignedByPCK) != tdx.QEReportSize {
				t.Errorf("signed ranges %d and %d bytes", len(q.SignedByAttestationKey), len(q.SignedByPCK))
			}
			// Marshal gives the quote back without its padding.
			m, err := q.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(m, b[:len(b)-rq.padding]) {
				t.Error("Marshal does not give the parsed bytes back")
			}
			// The parser does not alias its input.
			c := bytes.Clone(b)
			q2 := mustParse(t, c)
			clear(c)
			if q2.Body.MRTD != q.Body.MRTD || !bytes.Equal(q2.SignedByAttestationKey, q.SignedByAttestationKey) {
				t.Error("the quote aliases its input")
			}
		})
	}
}

// TestRealQuoteRelations checks what SOURCES.md says of the vectors'
// relations: the go-tdx-guest SPR sample is the oasis-core out-of-date
// quote (plus go-tdx-guest's test text), and the dcap-qvl and oasis-core v4
// quotes come from one TD firmware build.
func TestRealQuoteRelations(t *testing.T) {
	if !bytes.Equal(sprQuote(t), readTestdata(t, "oasis-core-quote_v4_tdx_ecdsa_p256_out_of_date.bin")) {
		t.Error("the trimmed go-tdx-guest SPR quote is not the oasis-core out-of-date quote")
	}
	a := mustParse(t, readTestdata(t, "dcap-qvl-tdx_quote"))
	b := mustParse(t, readTestdata(t, "oasis-core-quote_v4_tdx_ecdsa_p256.bin"))
	if a.Body.MRTD != b.Body.MRTD {
		t.Error("dcap-qvl and oasis-core v4 MRTDs differ")
	}
}

// TestTrusteeExpectedClaims compares every body and header field of
// trustee's tdx_quote_4 with trustee's parse_tdx_claims_expected.json.
func TestTrusteeExpectedClaims(t *testing.T) {
	var exp struct {
		Quote struct {
			Body   map[string]string `json:"body"`
			Header map[string]string `json:"header"`
		} `json:"quote"`
		ReportData         string `json:"report_data"`
		InitData           string `json:"init_data"`
		PlatformInstanceID string `json:"platform_instance_id"`
		TDAttributes       struct {
			Debug         bool `json:"debug"`
			SEPTVEDisable bool `json:"septve_disable"`
		} `json:"td_attributes"`
	}
	if err := json.Unmarshal(readTestdata(t, "trustee-parse_tdx_claims_expected.json"), &exp); err != nil {
		t.Fatal(err)
	}
	raw := readTestdata(t, "trustee-tdx_quote_4.dat")
	q := mustParse(t, raw)
	b := &q.Body
	h := hex.EncodeToString
	for k, got := range map[string]string{
		"mr_config_id": h(b.MRConfigID[:]), "mr_owner": h(b.MROwner[:]), "mr_owner_config": h(b.MROwnerConfig[:]),
		"mr_seam": h(b.MRSEAM[:]), "mr_td": h(b.MRTD[:]), "mrsigner_seam": h(b.MRSignerSEAM[:]),
		"report_data": h(b.ReportData[:]), "rtmr_0": h(b.RTMR[0][:]), "rtmr_1": h(b.RTMR[1][:]),
		"rtmr_2": h(b.RTMR[2][:]), "rtmr_3": h(b.RTMR[3][:]), "seam_attributes": h(b.SEAMAttributes[:]),
		"tcb_svn": h(b.TEETCBSVN[:]), "td_attributes": h(b.TDAttributes[:]), "xfam": h(b.XFAM[:]),
	} {
		if want, ok := exp.Quote.Body[k]; !ok || got != want {
			t.Errorf("body %s = %s, want %s", k, got, want)
		}
	}
	if len(exp.Quote.Body) != 15 {
		t.Errorf("trustee lists %d body fields, this test compares 15", len(exp.Quote.Body))
	}
	for k, got := range map[string]string{
		"version": h(raw[0:2]), "att_key_type": h(raw[2:4]), "tee_type": h(raw[4:8]), "reserved": h(raw[8:12]),
		"vendor_id": h(q.Header.QEVendorID[:]), "user_data": h(q.Header.UserData[:]),
	} {
		if want := exp.Quote.Header[k]; got != want {
			t.Errorf("header %s = %s, want %s", k, got, want)
		}
	}
	if h(b.ReportData[:]) != exp.ReportData || h(b.MRConfigID[:]) != exp.InitData {
		t.Error("report data or init data")
	}
	if b.Debug() != exp.TDAttributes.Debug || (b.Attributes()&tdx.TDAttrSEPTVEDisable != 0) != exp.TDAttributes.SEPTVEDisable {
		t.Errorf("TD attributes %x", b.TDAttributes)
	}
}

// TestParsePadding: zero bytes after a quote are padding, anything else is
// refused.
func TestParsePadding(t *testing.T) {
	exact := readTestdata(t, "trustee-tdx_quote_4.dat")
	for _, n := range []int{1, 70, 3065} {
		q, err := tdx.ParseQuote(append(bytes.Clone(exact), make([]byte, n)...))
		if err != nil || q.Padding != n {
			t.Errorf("%d zero bytes: padding %v, %v", n, q, err)
		}
	}
	for name, b := range map[string][]byte{
		"go-tdx-guest SPR sample as published (text after the quote)": readTestdata(t, "gotdxguest-spr-quote_v4.dat"),
		"one non-zero byte":                 append(bytes.Clone(exact), 1),
		"zeros then a non-zero byte":        append(append(bytes.Clone(exact), make([]byte, 69)...), 0x80),
		"non-zero byte in the GCP padding":  func() []byte { b := readTestdata(t, "gotdxguest-cos113-quote.dat"); b[len(b)-1] = 1; return b }(),
		"padded beyond MaxQuoteSize":        append(bytes.Clone(exact), make([]byte, tdx.MaxQuoteSize)...),
		"PCK chain cut, zeros in its place": append(exact[:len(exact)-100:len(exact)-100], make([]byte, 100)...),
	} {
		t.Run(name, func(t *testing.T) {
			if q, err := tdx.ParseQuote(b); !errors.Is(err, attest.ErrMalformed) || q != nil {
				t.Fatalf("want ErrMalformed, got %v", err)
			}
		})
	}
}

// TestParseRefuses changes one framing or reserved field at a time.
func TestParseRefuses(t *testing.T) {
	v4 := readTestdata(t, "trustee-tdx_quote_4.dat")
	v5 := readTestdata(t, "trustee-tdx_quote_5.dat")
	le := binary.LittleEndian
	put16 := func(b []byte, off int, v uint16) []byte { b = bytes.Clone(b); le.PutUint16(b[off:], v); return b }
	put32 := func(b []byte, off int, v uint32) []byte { b = bytes.Clone(b); le.PutUint32(b[off:], v); return b }
	set := func(b []byte, off int, v byte) []byte { b = bytes.Clone(b); b[off] = v; return b }
	// Offsets in trustee-tdx_quote_4 (v4): signature data at 636; in the
	// v5 quote everything after the body descriptor is 6+64 bytes later.
	const (
		sig4   = 632 + 4
		cert4  = sig4 + 128       // certification data type, size
		qe4    = cert4 + 6        // QE report
		auth4  = qe4 + 384 + 64   // QE auth data size
		inner4 = auth4 + 2 + 32   // inner certification data type, size
		chain4 = inner4 + 6       // PEM
		sig5   = 48 + 6 + 648 + 4 // v5 signature data
	)
	for name, b := range map[string][]byte{
		"empty":                          nil,
		"header only":                    v4[:48],
		"version 3":                      put16(v4, 0, 3),
		"version 6":                      put16(v4, 0, 6),
		"key type 3 (P-384)":             put16(v4, 2, 3),
		"TEE type SGX":                   put32(v4, 4, 0),
		"header reserved byte 8":         set(v4, 8, 1),
		"header reserved byte 11":        set(v4, 11, 1),
		"v5 body type 1 (SGX)":           put16(v5, 48, 1),
		"v5 body type 4":                 put16(v5, 48, 4),
		"v5 body size 584 for type 3":    put32(v5, 50, 584),
		"v5 body type 2 with 648 bytes":  put16(v5, 48, 2),
		"v4 labelled v5":                 put16(v4, 0, 5),
		"v5 labelled v4":                 put16(v5, 0, 4),
		"signature data length +1":       put32(v4, 632, uint32(len(v4)-sig4+1)),
		"signature data length -1":       put32(v4, 632, uint32(len(v4)-sig4-1)),
		"signature data length huge":     put32(v4, 632, 0xffffffff),
		"v5 signature data length -1":    put32(v5, sig5-4, uint32(len(v5)-sig5-1)),
		"certification data type 5":      put16(v4, cert4, 5),
		"certification data type 7":      put16(v4, cert4, 7),
		"certification data size +1":     put32(v4, cert4+2, le.Uint32(v4[cert4+2:])+1),
		"certification data size -1":     put32(v4, cert4+2, le.Uint32(v4[cert4+2:])-1),
		"QE report reserved byte 20":     set(v4, qe4+20, 1),
		"QE report reserved byte 100":    set(v4, qe4+100, 1),
		"QE report reserved byte 170":    set(v4, qe4+170, 1),
		"QE report reserved byte 300":    set(v4, qe4+300, 1),
		"QE auth data size past the end": put16(v4, auth4, 0xffff),
		"QE auth data size +1":           put16(v4, auth4, 33),
		"inner certification type 6":     put16(v4, inner4, 6),
		"inner certification type 1":     put16(v4, inner4, 1),
		"PCK chain size +1":              put32(v4, inner4+2, le.Uint32(v4[inner4+2:])+1),
		"PCK chain size -1":              put32(v4, inner4+2, le.Uint32(v4[inner4+2:])-1),
		"PCK chain not PEM":              set(v4, chain4, 'X'),
		"PCK chain PEM type":             set(v4, chain4+11, 'X'),
		"PCK chain two NULs":             set(v4, len(v4)-2, 0),
		"cut in the body":                v4[:300],
		"cut in the signature data":      v4[:1000],
		"v5 cut in the body descriptor":  v5[:50],
	} {
		t.Run(name, func(t *testing.T) {
			if q, err := tdx.ParseQuote(b); !errors.Is(err, attest.ErrMalformed) || q != nil {
				t.Fatalf("want ErrMalformed, got %v", err)
			}
		})
	}
}

func TestMarshalRefuses(t *testing.T) {
	q := mustParse(t, readTestdata(t, "trustee-tdx_quote_4.dat"))
	q.BodyType = tdx.BodyTypeTD15 // a TD report 1.5 body needs version 5
	if _, err := q.Marshal(); err == nil {
		t.Error("a version 4 quote with a TD report 1.5 body marshalled")
	}
	q.Header.Version, q.BodyType = 3, tdx.BodyTypeTD10
	if _, err := q.Marshal(); err == nil {
		t.Error("a version 3 quote marshalled")
	}
	q.Header.Version = 5 // a v5 quote may carry a TD report 1.0 body
	b, err := q.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if q2 := mustParse(t, b); q2.Header.Version != 5 || q2.BodyType != tdx.BodyTypeTD10 || q2.Body != q.Body {
		t.Error("v5 with a TD report 1.0 body does not round-trip")
	}
}
