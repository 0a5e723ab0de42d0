package coordinator

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"maps"

	"github.com/trustbound/trustbound/attest"
	"github.com/trustbound/trustbound/attest/tdx"
)

// The bare TEE evidence of guest-components' attesters, mapped to
// trustbound's evidence formats.
//
// tdx (attestation-agent/attester/src/tdx/mod.rs, verified by trustee's
// deps/verifier/src/tdx/mod.rs): {"cc_eventlog": base64 CCEL ACPI table
// or null, "quote": base64 TD quote}. The quote becomes
// attest.FormatTDXQuote. The CC event log (the log area of the CCEL ACPI
// table, as /sys/firmware/acpi/tables/data/CCEL holds it: a TCG
// crypto-agile log, trailing padding allowed) is, once the quote is
// verified, replayed into RTMR0..3 by attest/tdx (tdx.ReplayCCEL), which
// must give the quote's RTMRs, else the attestation is refused ("event log
// does not replay to RTMR[i]"); the claims say cc_eventlog "replayed" (and
// the events per RTMR) or "absent". No manifest field needs the log (the
// manifest pins RTMRs from the quote), so an absent log refuses nothing.
//
// snp (attestation-agent/attester/src/snp/mod.rs, verified by trustee's
// deps/verifier/src/snp/mod.rs): {"attestation_report": the Rust sev
// crate's AttestationReport as serde JSON, "cert_chain": [{"cert_type",
// "data": [DER bytes]}]}. The report is re-serialised to the 1184-byte
// ABI (SEV-SNP ABI spec, table "ATTESTATION_REPORT"), reserved bytes zero,
// and becomes attest.FormatSNPReport with the VCEK/VLEK of the chain. The
// report signature proves the re-serialisation exact (kbs_tee_test.go
// checks it on trustee's real e2e sample). Refused: unknown members (reports newer than version 3, whose
// extra fields this mapping does not place), and a TCB with an FMC
// component (Turin), whose layout is not verified here.
//
// init-data: checked against MRCONFIGID (tdx) or HOST_DATA (snp) as
// Trustee does; see kbs_initdata.go.

type kbsTDXEvidence struct {
	CCEventlog *string `json:"cc_eventlog"`
	Quote      string  `json:"quote"`
}

type kbsSNPCert struct {
	CertType string   `json:"cert_type"`
	Data     kbsBytes `json:"data"`
}

type kbsSNPTCB struct {
	FMC        *uint8 `json:"fmc"`
	Bootloader uint8  `json:"bootloader"`
	TEE        uint8  `json:"tee"`
	SNP        uint8  `json:"snp"`
	Microcode  uint8  `json:"microcode"`
}

type kbsSNPVersion struct {
	Major uint8 `json:"major"`
	Minor uint8 `json:"minor"`
	Build uint8 `json:"build"`
}

type kbsSNPReport struct {
	Version         uint32        `json:"version"`
	GuestSVN        uint32        `json:"guest_svn"`
	Policy          uint64        `json:"policy"`
	FamilyID        kbsBytes      `json:"family_id"`
	ImageID         kbsBytes      `json:"image_id"`
	VMPL            uint32        `json:"vmpl"`
	SigAlgo         uint32        `json:"sig_algo"`
	CurrentTCB      kbsSNPTCB     `json:"current_tcb"`
	PlatInfo        uint64        `json:"plat_info"`
	KeyInfo         uint32        `json:"key_info"`
	ReportData      kbsBytes      `json:"report_data"`
	Measurement     kbsBytes      `json:"measurement"`
	HostData        kbsBytes      `json:"host_data"`
	IDKeyDigest     kbsBytes      `json:"id_key_digest"`
	AuthorKeyDigest kbsBytes      `json:"author_key_digest"`
	ReportID        kbsBytes      `json:"report_id"`
	ReportIDMA      kbsBytes      `json:"report_id_ma"`
	ReportedTCB     kbsSNPTCB     `json:"reported_tcb"`
	CPUIDFamID      *uint8        `json:"cpuid_fam_id"`
	CPUIDModID      *uint8        `json:"cpuid_mod_id"`
	CPUIDStep       *uint8        `json:"cpuid_step"`
	ChipID          kbsBytes      `json:"chip_id"`
	CommittedTCB    kbsSNPTCB     `json:"committed_tcb"`
	Current         kbsSNPVersion `json:"current"`
	Committed       kbsSNPVersion `json:"committed"`
	LaunchTCB       kbsSNPTCB     `json:"launch_tcb"`
	Signature       struct {
		R kbsBytes `json:"r"`
		S kbsBytes `json:"s"`
	} `json:"signature"`
}

// kbsSNPReportSize is the ABI size of an SNP attestation report.
const kbsSNPReportSize = 0x4A0

// kbsMapped is the KBS tee's evidence mapped to trustbound's, with what
// the mapping leaves to check after verification.
type kbsMapped struct {
	ev *attest.Evidence
	// ccel is the decoded cc_eventlog of bare tdx evidence, nil when the
	// evidence has none.
	ccel []byte
}

// kbsEvidence maps the KBS tee's evidence to trustbound's.
func kbsEvidence(tee string, data []byte) (*attest.Evidence, error) {
	m, err := kbsMap(tee, data)
	if err != nil {
		return nil, err
	}
	return m.ev, nil
}

// kbsMap maps the KBS tee's evidence to trustbound's, keeping the bare tdx
// evidence's event log.
func kbsMap(tee string, data []byte) (*kbsMapped, error) {
	switch tee {
	case "tdx":
		var ev kbsTDXEvidence
		if err := strictJSON(data, &ev); err != nil {
			return nil, fmt.Errorf("%w: tdx evidence: %w", attest.ErrMalformed, err)
		}
		q, err := base64.StdEncoding.DecodeString(ev.Quote)
		if err != nil || len(q) == 0 {
			return nil, fmt.Errorf("%w: tdx evidence: quote is not base64 of a TD quote", attest.ErrMalformed)
		}
		out := &kbsMapped{ev: &attest.Evidence{Format: attest.FormatTDXQuote, Data: q}}
		if ev.CCEventlog != nil {
			if out.ccel, err = base64.StdEncoding.DecodeString(*ev.CCEventlog); err != nil || len(out.ccel) == 0 {
				return nil, fmt.Errorf("%w: tdx evidence: cc_eventlog is not base64 of a CC event log (null when there is none)", attest.ErrMalformed)
			}
		}
		return out, nil
	case "snp":
		var ev struct {
			Report    json.RawMessage `json:"attestation_report"`
			CertChain []kbsSNPCert    `json:"cert_chain"`
		}
		if err := strictJSON(data, &ev); err != nil {
			return nil, fmt.Errorf("%w: snp evidence: %w", attest.ErrMalformed, err)
		}
		raw, err := KBSSNPReportABI(ev.Report)
		if err != nil {
			return nil, err
		}
		out := &attest.Evidence{Format: attest.FormatSNPReport, Data: raw}
		mapped := &kbsMapped{ev: out}
		for _, c := range ev.CertChain { // VCEK or VLEK first, as attest/snp wants
			if c.CertType == "VCEK" || c.CertType == "VLEK" {
				out.Certs = append([][]byte{c.Data}, out.Certs...)
			} else {
				out.Certs = append(out.Certs, c.Data)
			}
		}
		return mapped, nil
	}
	return &kbsMapped{ev: &attest.Evidence{Format: kbsTEEs[tee], Data: data}}, nil
}

// kbsReplayCCEL replays the bare tdx evidence's event log (if any) against
// the verified claims' RTMRs and records the outcome in the claims.
func kbsReplayCCEL(m *kbsMapped, claims *attest.Claims) error {
	if claims.Platform == nil {
		claims.Platform = map[string]string{}
	}
	if m.ccel == nil {
		claims.Platform["cc_eventlog"] = "absent"
		return nil
	}
	rtmrs, err := tdx.RTMRsOf(claims)
	if err != nil {
		return err
	}
	r, err := tdx.ReplayCCEL(m.ccel, rtmrs)
	if err != nil {
		return err
	}
	maps.Copy(claims.Platform, r.Claims())
	return nil
}

// kbsBytes is a byte string as serde writes one: an array of numbers.
type kbsBytes []byte

func (k *kbsBytes) UnmarshalJSON(b []byte) error {
	var v []uint8Num
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	out := make([]byte, len(v))
	for i, n := range v {
		out[i] = byte(n)
	}
	*k = out
	return nil
}

// uint8Num is one byte of a kbsBytes (json rejects numbers out of range).
type uint8Num uint8

func strictJSON(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

// KBSSNPReportABI re-serialises the Rust sev crate's JSON form of an SNP
// attestation report (as guest-components' snp attester sends it) to the
// 1184-byte ABI report.
func KBSSNPReportABI(js []byte) ([]byte, error) {
	var r kbsSNPReport
	if err := strictJSON(js, &r); err != nil {
		return nil, fmt.Errorf("%w: snp attestation_report: %w", attest.ErrMalformed, err)
	}
	b := make([]byte, kbsSNPReportSize)
	le := binary.LittleEndian
	var bad error
	put := func(off int, name string, v kbsBytes, n int) {
		if len(v) != n && bad == nil {
			bad = fmt.Errorf("%w: snp attestation_report: %s has %d bytes, want %d", attest.ErrMalformed, name, len(v), n)
		}
		copy(b[off:off+n], v)
	}
	tcb := func(off int, name string, t kbsSNPTCB) {
		if t.FMC != nil && bad == nil {
			bad = fmt.Errorf("%w: snp attestation_report: %s has an FMC component (Turin); not supported at /kbs/v0", attest.ErrMalformed, name)
		}
		b[off], b[off+1], b[off+6], b[off+7] = t.Bootloader, t.TEE, t.SNP, t.Microcode
	}
	le.PutUint32(b[0x00:], r.Version)
	le.PutUint32(b[0x04:], r.GuestSVN)
	le.PutUint64(b[0x08:], r.Policy)
	put(0x10, "family_id", r.FamilyID, 16)
	put(0x20, "image_id", r.ImageID, 16)
	le.PutUint32(b[0x30:], r.VMPL)
	le.PutUint32(b[0x34:], r.SigAlgo)
	tcb(0x38, "current_tcb", r.CurrentTCB)
	le.PutUint64(b[0x40:], r.PlatInfo)
	le.PutUint32(b[0x48:], r.KeyInfo)
	put(0x50, "report_data", r.ReportData, 64)
	put(0x90, "measurement", r.Measurement, 48)
	put(0xC0, "host_data", r.HostData, 32)
	put(0xE0, "id_key_digest", r.IDKeyDigest, 48)
	put(0x110, "author_key_digest", r.AuthorKeyDigest, 48)
	put(0x140, "report_id", r.ReportID, 32)
	put(0x160, "report_id_ma", r.ReportIDMA, 32)
	tcb(0x180, "reported_tcb", r.ReportedTCB)
	for i, p := range []*uint8{r.CPUIDFamID, r.CPUIDModID, r.CPUIDStep} {
		if p != nil {
			b[0x188+i] = *p
		}
	}
	put(0x1A0, "chip_id", r.ChipID, 64)
	tcb(0x1E0, "committed_tcb", r.CommittedTCB)
	b[0x1E8], b[0x1E9], b[0x1EA] = r.Current.Build, r.Current.Minor, r.Current.Major
	b[0x1EC], b[0x1ED], b[0x1EE] = r.Committed.Build, r.Committed.Minor, r.Committed.Major
	tcb(0x1F0, "launch_tcb", r.LaunchTCB)
	put(0x2A0, "signature.r", r.Signature.R, 72)
	put(0x2E8, "signature.s", r.Signature.S, 72)
	if bad != nil {
		return nil, bad
	}
	return b, nil
}
