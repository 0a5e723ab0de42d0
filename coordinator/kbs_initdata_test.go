package coordinator_test

import (
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/trustbound/trustbound/attest"
	"github.com/trustbound/trustbound/attest/simtee"
	"github.com/trustbound/trustbound/manifest"
)

// initdataTOML is an initdata document as kata's genpolicy / CoCo tooling
// writes one (the Initdata specification, version 0.1.0).
func initdataTOML(alg string) string {
	return `algorithm = "` + alg + `"
version = "0.1.0"

[data]
"aa.toml" = '''
[token_configs.kbs]
url = "https://kbs.example:8080"
'''
"policy.rego" = '''
package agent_policy
default ExecProcessRequest := false
'''
`
}

// oneByteChanged changes one byte of the document's data section.
func oneByteChanged(doc string) string { return strings.Replace(doc, "8080", "8081", 1) }

// attestBare runs /kbs/v0/auth and /kbs/v0/attest for tee (protocol 0.1:
// the evidence itself), with initData (nil: none) and the evidence that
// evidence makes for the report data binding the runtime data.
func (g *kbsGuest) attestBare(tee string, initData any, evidence func(rd [64]byte) any) (int, []byte) {
	g.t.Helper()
	st, out := g.do("POST", "/kbs/v0/auth", map[string]any{"version": "0.1.0", "tee": tee, "extra-params": ""})
	if st != http.StatusOK {
		g.t.Fatalf("auth: %d %s", st, out)
	}
	var ch struct{ Nonce string }
	_ = json.Unmarshal(out, &ch)
	pub, _ := json.Marshal(jose.JSONWebKey{Key: &g.key.PublicKey, Algorithm: "RSA-OAEP-256"})
	var pk any
	_ = json.Unmarshal(pub, &pk)
	canon, _ := json.Marshal(map[string]any{"nonce": ch.Nonce, "tee-pubkey": pk})
	sum := sha512.Sum384(canon)
	var rd [64]byte
	copy(rd[:], sum[:])
	body := map[string]any{
		"runtime-data": map[string]any{"nonce": ch.Nonce, "tee-pubkey": json.RawMessage(pub)},
		"tee-evidence": evidence(rd),
	}
	if initData != nil {
		body["init-data"] = initData
	}
	return g.do("POST", "/kbs/v0/attest", body)
}

func tomlInitData(body string) map[string]string {
	return map[string]string{"format": "toml", "body": body}
}

// problemOf decodes an RFC 7807 body.
func problemOf(t *testing.T, b []byte) (title, detail string) {
	t.Helper()
	var p struct{ Title, Detail string }
	if err := json.Unmarshal(b, &p); err != nil {
		t.Fatalf("not a problem body: %s", b)
	}
	return p.Title, p.Detail
}

// tokenPlatform returns the annotated evidence's platform claims of the
// token in a KBS attest answer.
func tokenPlatform(t *testing.T, out []byte) map[string]string {
	t.Helper()
	var resp struct{ Token string }
	if err := json.Unmarshal(out, &resp); err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(resp.Token, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWS: %q", resp.Token)
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var body struct {
		Submods map[string]struct {
			Evidence struct {
				Platform map[string]string `json:"platform"`
			} `json:"ear.veraison.annotated-evidence"`
		} `json:"submods"`
	}
	if err := json.Unmarshal(payload, &body); err != nil {
		t.Fatal(err)
	}
	for _, s := range body.Submods {
		return s.Evidence.Platform
	}
	t.Fatal("no submod")
	return nil
}

func padTo(b []byte, n int) []byte {
	out := make([]byte, n)
	copy(out, b)
	return out
}

// Bare TDX with init-data: its SHA-384 (or SHA-256 / SHA-512, padded or
// truncated to 48 bytes) must be MRCONFIGID.
func TestKBSInitDataTDX(t *testing.T) {
	doc := initdataTOML("sha384")
	d384 := sha512.Sum384([]byte(doc))
	var pinned [48]byte
	copy(pinned[:], d384[:])
	mrtd, otherMRTD := [48]byte{0x1d, 0xa7}, [48]byte{0x9}
	h := newMAAHarness(t, time.Now().UTC(), simtee.TDXCollateralSource(), func(m *manifest.Manifest) {
		m.Workloads = append(m.Workloads,
			manifest.Workload{Name: "kata-td", Model: manifest.ConfidentialVM, TEE: attest.TDX,
				Reference: manifest.Reference{Measurements: []attest.Hex{mrtd[:]}}},
			// Another TD image whose manifest pins MRCONFIGID.
			manifest.Workload{Name: "pinned-td", Model: manifest.ConfidentialVM, TEE: attest.TDX,
				Reference: manifest.Reference{Measurements: []attest.Hex{otherMRTD[:]}, HostData: pinned[:]}},
		)
	})
	g := newKBSGuest(t, h, ledgerCVM)
	tdxEvidence := func(td simtee.TDX) func(rd [64]byte) any {
		return func(rd [64]byte) any {
			ev := mustAttest(t, td, rd)
			return map[string]any{"cc_eventlog": nil, "quote": base64.StdEncoding.EncodeToString(ev.Data)}
		}
	}
	td := simtee.TDX{MRTD: mrtd, MRConfigID: pinned}

	st, out := g.attestBare("tdx", tomlInitData(doc), tdxEvidence(td))
	if st != http.StatusOK {
		t.Fatalf("matching init-data: %d %s", st, out)
	}
	p := tokenPlatform(t, out)
	if p["init_data"] != hex.EncodeToString(d384[:]) || p["init_data_algorithm"] != "sha384" || p["cc_eventlog"] != "absent" {
		t.Errorf("token platform claims %v", p)
	}

	st, out = g.attestBare("tdx", tomlInitData(oneByteChanged(doc)), tdxEvidence(td))
	if title, detail := problemOf(t, out); st != http.StatusForbidden || title != "Init-data refused" || !strings.Contains(detail, "init-data.body") || !strings.Contains(detail, "MRCONFIGID") {
		t.Errorf("one byte changed: %d %s", st, out)
	}

	// SHA-256 and SHA-512 documents, as kata pads and truncates them.
	for _, alg := range []string{"sha256", "sha512"} {
		doc := initdataTOML(alg)
		var d []byte
		if alg == "sha256" {
			s := sha256.Sum256([]byte(doc))
			d = s[:]
		} else {
			s := sha512.Sum512([]byte(doc))
			d = s[:]
		}
		td := simtee.TDX{MRTD: mrtd}
		copy(td.MRConfigID[:], padTo(d, 48))
		if st, out := g.attestBare("tdx", tomlInitData(doc), tdxEvidence(td)); st != http.StatusOK {
			t.Errorf("%s init-data: %d %s", alg, st, out)
		}
	}

	// No init-data: nothing compared; the manifest's hostData pin decides.
	pinnedTD := simtee.TDX{MRTD: otherMRTD, MRConfigID: pinned}
	if st, out := g.attestBare("tdx", nil, tdxEvidence(pinnedTD)); st != http.StatusOK {
		t.Errorf("no init-data, pinned MRCONFIGID: %d %s", st, out)
	}
	pinnedTD.MRConfigID[0] ^= 1
	if st, out := g.attestBare("tdx", nil, tdxEvidence(pinnedTD)); st != http.StatusForbidden || !strings.Contains(string(out), "pinned-td") {
		t.Errorf("no init-data, another MRCONFIGID: %d %s", st, out)
	}

	// Init-data that is not an initdata document.
	for _, c := range []struct {
		name string
		d    any
		msg  string
	}{
		{"format json", map[string]string{"format": "json", "body": doc}, "init-data.format"},
		{"no algorithm", tomlInitData("version = \"0.1.0\"\n[data]\n"), "no top-level algorithm"},
		{"unknown algorithm", tomlInitData(initdataTOML("md5")), `algorithm "md5"`},
	} {
		st, out := g.attestBare("tdx", c.d, tdxEvidence(td))
		if title, detail := problemOf(t, out); st != http.StatusBadRequest || title != "Init-data refused" || !strings.Contains(detail, c.msg) {
			t.Errorf("%s: %d %s", c.name, st, out)
		}
	}
}

// Bare TDX evidence with its CC event log: the log must replay to the
// quote's RTMRs.
func TestKBSTDXEventLog(t *testing.T) {
	mrtd := [48]byte{0xcc, 0xe1}
	h := newMAAHarness(t, time.Now().UTC(), simtee.TDXCollateralSource(), func(m *manifest.Manifest) {
		m.Workloads = append(m.Workloads, manifest.Workload{Name: "kata-td", Model: manifest.ConfidentialVM, TEE: attest.TDX,
			Reference: manifest.Reference{Measurements: []attest.Hex{mrtd[:]}}})
	})
	g := newKBSGuest(t, h, ledgerCVM)
	log, rtmrs := testCCEL([][2]any{
		{0, "TD HOB"}, {0, "EFI variable SecureBoot"}, {1, "shim"}, {1, "grub"}, {2, "linux cmdline"},
	})
	td := simtee.TDX{MRTD: mrtd, RTMRs: rtmrs}
	withLog := func(log []byte) func(rd [64]byte) any {
		return func(rd [64]byte) any {
			ev := mustAttest(t, td, rd)
			return map[string]any{"cc_eventlog": base64.StdEncoding.EncodeToString(log), "quote": base64.StdEncoding.EncodeToString(ev.Data)}
		}
	}
	st, out := g.attestBare("tdx", nil, withLog(log))
	if st != http.StatusOK {
		t.Fatalf("log replaying to the RTMRs: %d %s", st, out)
	}
	p := tokenPlatform(t, out)
	if p["cc_eventlog"] != "replayed" || p["cc_eventlog_rtmr0"] != "2" || p["cc_eventlog_rtmr2"] != "1" || p["cc_eventlog_rtmr3"] != "not covered" {
		t.Errorf("token platform claims %v", p)
	}

	// One event's digest changed.
	d := sha512.Sum384([]byte("grub"))
	tampered := append([]byte(nil), log...)
	i := strings.Index(string(tampered), string(d[:]))
	tampered[i] ^= 0x80
	st, out = g.attestBare("tdx", nil, withLog(tampered))
	if title, detail := problemOf(t, out); st != http.StatusForbidden || title != "Event log refused" || !strings.Contains(detail, "event log does not replay to RTMR[1]") {
		t.Errorf("tampered log: %d %s", st, out)
	}
	// A log that does not parse.
	if st, out := g.attestBare("tdx", nil, withLog([]byte("not a log, not at all, not even close"))); st != http.StatusBadRequest {
		t.Errorf("garbage log: %d %s", st, out)
	}
	// Without a log: accepted, and said so.
	st, out = g.attestBare("tdx", nil, func(rd [64]byte) any {
		ev := mustAttest(t, td, rd)
		return map[string]any{"quote": base64.StdEncoding.EncodeToString(ev.Data)}
	})
	if st != http.StatusOK || tokenPlatform(t, out)["cc_eventlog"] != "absent" {
		t.Errorf("no log: %d %s", st, out)
	}
}

// testCCEL writes a TCG crypto-agile event log with SHA-384 digests of
// events {RTMR index, data} and returns it with the RTMRs it extends to.
func testCCEL(events [][2]any) ([]byte, [4][48]byte) {
	le := binary.LittleEndian
	spec := append([]byte("Spec ID Event03\x00"), 0, 0, 0, 0, 0, 2, 0, 2, 1, 0, 0, 0, 0x0C, 0, 48, 0, 0)
	log := le.AppendUint32(nil, 0)
	log = le.AppendUint32(log, 3) // EV_NO_ACTION
	log = append(log, make([]byte, 20)...)
	log = le.AppendUint32(log, uint32(len(spec)))
	log = append(log, spec...)
	var rtmrs [4][48]byte
	for _, e := range events {
		i, data := e[0].(int), []byte(e[1].(string))
		d := sha512.Sum384(data)
		rtmrs[i] = sha512.Sum384(append(rtmrs[i][:], d[:]...))
		log = le.AppendUint32(log, uint32(i+1))
		log = le.AppendUint32(log, 0x80000001)
		log = le.AppendUint32(log, 1)
		log = le.AppendUint16(log, 0x0C)
		log = append(log, d[:]...)
		log = le.AppendUint32(log, uint32(len(data)))
		log = append(log, data...)
	}
	return log, rtmrs
}

// snpSerde writes an ABI SNP report and its certificates as
// guest-components' snp attester sends them: the Rust sev crate's serde
// JSON, byte strings as arrays of numbers.
func snpSerde(ev *attest.Evidence) any {
	b := ev.Data
	le := binary.LittleEndian
	bytesAt := func(off, n int) []int {
		out := make([]int, n)
		for i := range out {
			out[i] = int(b[off+i])
		}
		return out
	}
	tcb := func(off int) map[string]int {
		return map[string]int{"bootloader": int(b[off]), "tee": int(b[off+1]), "snp": int(b[off+6]), "microcode": int(b[off+7])}
	}
	ver := func(off int) map[string]int {
		return map[string]int{"build": int(b[off]), "minor": int(b[off+1]), "major": int(b[off+2])}
	}
	report := map[string]any{
		"version": le.Uint32(b[0:]), "guest_svn": le.Uint32(b[4:]), "policy": le.Uint64(b[8:]),
		"family_id": bytesAt(0x10, 16), "image_id": bytesAt(0x20, 16), "vmpl": le.Uint32(b[0x30:]),
		"sig_algo": le.Uint32(b[0x34:]), "current_tcb": tcb(0x38), "plat_info": le.Uint64(b[0x40:]),
		"key_info": le.Uint32(b[0x48:]), "report_data": bytesAt(0x50, 64), "measurement": bytesAt(0x90, 48),
		"host_data": bytesAt(0xC0, 32), "id_key_digest": bytesAt(0xE0, 48), "author_key_digest": bytesAt(0x110, 48),
		"report_id": bytesAt(0x140, 32), "report_id_ma": bytesAt(0x160, 32), "reported_tcb": tcb(0x180),
		"cpuid_fam_id": b[0x188], "cpuid_mod_id": b[0x189], "cpuid_step": b[0x18A],
		"chip_id": bytesAt(0x1A0, 64), "committed_tcb": tcb(0x1E0), "current": ver(0x1E8), "committed": ver(0x1EC),
		"launch_tcb": tcb(0x1F0), "signature": map[string]any{"r": bytesAt(0x2A0, 72), "s": bytesAt(0x2E8, 72)},
	}
	var chain []map[string]any
	for i, c := range ev.Certs {
		typ := []string{"VCEK", "ASK", "ARK"}[min(i, 2)]
		data := make([]int, len(c))
		for j, x := range c {
			data[j] = int(x)
		}
		chain = append(chain, map[string]any{"cert_type": typ, "data": data})
	}
	return map[string]any{"attestation_report": report, "cert_chain": chain}
}

// Bare SNP with init-data: its SHA-256 (SHA-384 truncated) must be
// HOST_DATA.
func TestKBSInitDataSNP(t *testing.T) {
	doc := initdataTOML("sha256")
	digest := sha256.Sum256([]byte(doc))
	meas := [48]byte{0x5e, 0x5e}
	h := newMAAHarness(t, time.Now().UTC(), nil, func(m *manifest.Manifest) {
		m.Workloads = append(m.Workloads, manifest.Workload{Name: "kata-snp", Model: manifest.ConfidentialVM, TEE: attest.SEVSNP,
			Reference: manifest.Reference{Measurements: []attest.Hex{meas[:]}}})
	})
	g := newKBSGuest(t, h, ledgerCVM)
	snpEvidence := func(vm simtee.SNP) func(rd [64]byte) any {
		return func(rd [64]byte) any { return snpSerde(mustAttest(t, vm, rd)) }
	}
	vm := simtee.SNP{Measurement: meas, HostData: digest}
	st, out := g.attestBare("snp", tomlInitData(doc), snpEvidence(vm))
	if st != http.StatusOK {
		t.Fatalf("matching init-data: %d %s", st, out)
	}
	if p := tokenPlatform(t, out); p["init_data"] != hex.EncodeToString(digest[:]) || p["init_data_algorithm"] != "sha256" {
		t.Errorf("token platform claims %v", p)
	}
	st, out = g.attestBare("snp", tomlInitData(oneByteChanged(doc)), snpEvidence(vm))
	if title, detail := problemOf(t, out); st != http.StatusForbidden || title != "Init-data refused" || !strings.Contains(detail, "HOST_DATA") {
		t.Errorf("one byte changed: %d %s", st, out)
	}
	// A SHA-384 document: its digest truncated to 32 bytes.
	doc384 := initdataTOML("sha384")
	d384 := sha512.Sum384([]byte(doc384))
	copy(vm.HostData[:], d384[:32])
	if st, out := g.attestBare("snp", tomlInitData(doc384), snpEvidence(vm)); st != http.StatusOK {
		t.Errorf("sha384 init-data: %d %s", st, out)
	}
}

// az-snp-vtpm with init-data: vTPM PCR 8 must be the digest extended once.
func TestKBSInitDataAzureVTPM(t *testing.T) {
	doc := initdataTOML("sha256")
	digest := sha256.Sum256([]byte(doc))
	pcr8 := sha256.Sum256(append(make([]byte, 32), digest[:]...))
	h := newMAAHarness(t, time.Now().UTC(), nil, func(m *manifest.Manifest) {
		wl, _ := m.Workload(manifest.SampleLedgerName)
		wl.Reference.PCRs = []manifest.PCR{{Index: 0, Digest: make(attest.Hex, 32)}, {Index: 8, Digest: pcr8[:]}}
	})
	vm := ledgerCVM
	vm.PCRs[8] = pcr8
	g := newKBSGuest(t, h, vm)
	azEvidence := func(rd [64]byte) any { return json.RawMessage(mustAttest(t, vm, rd).Data) }
	st, out := g.attestBare("az-snp-vtpm", tomlInitData(doc), azEvidence)
	if st != http.StatusOK {
		t.Fatalf("matching init-data: %d %s", st, out)
	}
	if p := tokenPlatform(t, out); p["init_data"] != hex.EncodeToString(digest[:]) {
		t.Errorf("token platform claims %v", p)
	}
	st, out = g.attestBare("az-snp-vtpm", tomlInitData(oneByteChanged(doc)), azEvidence)
	if title, detail := problemOf(t, out); st != http.StatusForbidden || title != "Init-data refused" || !strings.Contains(detail, "PCR 8") {
		t.Errorf("one byte changed: %d %s", st, out)
	}
	st, out = g.attestBare("az-snp-vtpm", tomlInitData(initdataTOML("sha384")), azEvidence)
	if _, detail := problemOf(t, out); st != http.StatusBadRequest || !strings.Contains(detail, "SHA-256") {
		t.Errorf("sha384 init-data for a vTPM: %d %s", st, out)
	}
	// Without init-data the manifest's PCR 8 pin still decides.
	if st, out := g.attestBare("az-snp-vtpm", nil, azEvidence); st != http.StatusOK {
		t.Errorf("no init-data: %d %s", st, out)
	}
}
