package dcap

import (
	"bytes"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/maphash"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/trustbound/trustbound/attest"
	"github.com/trustbound/trustbound/attest/internal/boundedcache"
)

// Input is one TCB evaluation.
type Input struct {
	// Kind is SGX for an SGX quote, TDX for a TD quote.
	Kind Kind
	// Collateral is what the Source served for the platform.
	Collateral *Collateral
	// Now is the time at which collateral must be valid and fresh.
	Now time.Time
	// PCKChain is the PCK chain the caller verified, as
	// x509.Certificate.Verify returns it: PCK leaf, PCK CA, …, trusted root.
	// Every collateral signing chain must lead to that same root.
	PCKChain []*x509.Certificate
	// PCK is the SGX extension of PCKChain[0] as the caller parsed it
	// with the chain (PCKChain.Ext of VerifyPCKChain), which spares
	// parsing it again; nil: Evaluate parses it.
	PCK *PCKExtensions
	// QE is the quoting enclave's report from the quote.
	QE QEReport
	// TDX is the TD report's TCB (required for Kind TDX, nil for SGX).
	TDX *TDXTCB
}

// Result is the verdict of a TCB evaluation.
type Result struct {
	// Status is the combined TCB status (platform level, TDX module and QE
	// converged as Intel's QVL does): what attest.Claims.TCB.Status reports.
	// For a TD report 1.5 body (TDXTCB.TEETCBSVN2 set) it may also be
	// TDRelaunchAdvised or TDRelaunchAdvisedConfigurationNeeded: the TD
	// launched under a TDX module now OutOfDate, the platform runs a
	// current one since a TD-preserving update (Intel's relaunch check).
	Status Status
	// Advisories are the advisory IDs of the matched platform level, then
	// of the TDX module level and of the QE level, each once.
	Advisories []string

	// PlatformStatus and TCBLevel are the platform's matched TCB level (for
	// TDX the first level that both the SGX and the TDX components meet).
	PlatformStatus Status
	TCBLevel       TCBLevel
	// TDXModuleStatus is the status of the TDX module identity level, when
	// the module identity applied (TEE_TCB_SVN[1] > 0); empty otherwise.
	TDXModuleStatus     Status
	TDXModuleAdvisories []string
	// QEStatus and QELevel are the QE's own TCB level.
	QEStatus Status
	QELevel  EnclaveTCBLevel

	// PCK is the SGX extension of the PCK certificate (Input.PCK when
	// the caller gave it).
	PCK *PCKExtensions
	// TCBInfo and QEIdentity are the verified collateral documents.
	TCBInfo    *TCBInfo
	QEIdentity *QEIdentity
	// RevocationChecked is true: the PCK leaf and its CA were checked
	// against the fresh, Intel-signed PCK CRL and root CA CRL.
	RevocationChecked bool
}

// Record writes the verdict into c, the claims of the quote evaluated:
// TCB (Evaluated, Status, a copy of Advisories), RevocationChecked, and the
// Platform entries platform_tcb_status, qe_tcb_status,
// tdx_module_tcb_status (only when the module identity applied),
// tcb_date (RFC 3339, UTC) and tcb_evaluation_data_number. c.Platform must
// not be nil.
func (r *Result) Record(c *attest.Claims) {
	c.TCB.Evaluated = true
	c.TCB.Status = string(r.Status)
	c.TCB.Advisories = slices.Clone(r.Advisories)
	c.RevocationChecked = r.RevocationChecked
	c.Platform["platform_tcb_status"] = string(r.PlatformStatus)
	c.Platform["qe_tcb_status"] = string(r.QEStatus)
	if r.TDXModuleStatus != "" {
		c.Platform["tdx_module_tcb_status"] = string(r.TDXModuleStatus)
	}
	c.Platform["tcb_date"] = r.TCBLevel.TCBDate.UTC().Format(time.RFC3339)
	c.Platform["tcb_evaluation_data_number"] = strconv.FormatUint(uint64(r.TCBInfo.TCBEvaluationDataNumber), 10)
}

// ErrNoMatchingTCBLevel is wrapped when the platform's TCB is below every
// level of the TCB info (Intel: TCB not supported).
var ErrNoMatchingTCBLevel = errors.New("no matching TCB level found")

// Evaluator evaluates platforms against collateral. It caches verified
// signatures, chains and CRLs by the exact bytes verified (the collateral,
// the PCK CA and the root), so warm evaluations verify no signature;
// time-dependent checks are made on every call. The zero value is ready;
// an Evaluator is safe for concurrent use.
type Evaluator struct {
	once  sync.Once
	seed  maphash.Seed
	cache *boundedcache.Cache[uint64, *verified] // by a seeded hash of everything verified, confirmed byte for byte
}

// maxCached bounds the verified collateral sets an Evaluator keeps (one per
// FMSPC, PCK CA and collateral issue in practice).
const maxCached = 64

// Evaluate is (&Evaluator{}).Evaluate, without a cache worth keeping.
func Evaluate(in *Input) (*Result, error) {
	var e Evaluator
	return e.Evaluate(in)
}

// verified is collateral whose signatures, chains and CRLs were checked;
// only time-dependent checks remain.
type verified struct {
	// of is a copy of what was verified (verifiedInputs): a cache hit
	// counts only when the inputs are these bytes, so that a collision of
	// the non-cryptographic cache key costs a verification, never a check.
	of                       verifiedInputs
	tcb                      *TCBInfo
	qe                       *QEIdentity
	tcbChain, qeChain, crlCh window
	pckCRL, rootCRL          *revocations
}

// Evaluate verifies in.Collateral to the root of in.PCKChain (signatures,
// chains, CRLs, validity at in.Now), checks that the PCK chain is not
// revoked and that the quoting enclave is Intel's, and matches the
// platform's TCB to a level. Refusals wrap ErrCollateral (collateral
// missing, malformed, not Intel's, stale, or for another platform),
// attest.ErrChain (a revoked PCK certificate: *RevokedError),
// attest.ErrSignature (a QE or TDX module that is not Intel's) or
// ErrNoMatchingTCBLevel. The Result's documents are shared with the cache
// (and its PCK with Input.PCK): do not modify them.
func (e *Evaluator) Evaluate(in *Input) (*Result, error) {
	if in == nil || in.Collateral == nil {
		return nil, fmt.Errorf("%w: no collateral", ErrCollateral)
	}
	switch {
	case in.Now.IsZero():
		return nil, errors.New("dcap: evaluation time (Input.Now) not set")
	case in.Kind != SGX && in.Kind != TDX:
		return nil, fmt.Errorf("dcap: unknown kind %q", in.Kind)
	case in.Kind == TDX && in.TDX == nil:
		return nil, errors.New("dcap: a TDX evaluation needs the TD report's TCB (Input.TDX)")
	case in.Kind == SGX && in.TDX != nil:
		return nil, errors.New("dcap: an SGX evaluation takes no TD report (Input.TDX)")
	case len(in.PCKChain) < 2:
		return nil, fmt.Errorf("%w: the PCK chain has %d certificates, want the PCK certificate, its CA and the root", attest.ErrChain, len(in.PCKChain))
	}
	leaf, pckCA, root := in.PCKChain[0], in.PCKChain[1], in.PCKChain[len(in.PCKChain)-1]
	pck := in.PCK
	if pck == nil {
		var err error
		if pck, err = ParsePCKExtensions(leaf); err != nil {
			return nil, fmt.Errorf("%w: %w", attest.ErrChain, err)
		}
	}

	c := in.Collateral
	e.once.Do(func() {
		e.seed = maphash.MakeSeed()
		e.cache = boundedcache.New[uint64, *verified](maxCached)
	})
	of := inputsOf(in.Kind, root, pckCA, c)
	key := of.hash(e.seed)
	v, ok := e.cache.Get(key)
	if !ok || !v.of.equal(&of) {
		var err error
		if v, err = verifyCollateral(in.Kind, c, pckCA, root, in.Now); err != nil {
			return nil, err
		}
		for i, b := range of {
			v.of[i] = bytes.Clone(b)
		}
		e.cache.Put(key, v)
	}
	if err := v.current(in.Now); err != nil {
		return nil, err
	}
	// Revocation of the PCK chain: the leaf by its CA's CRL, every CA
	// below the root by the root CA's CRL.
	if v.pckCRL.revoked(leaf) {
		return nil, &RevokedError{Subject: leaf.Subject.CommonName, Serial: leaf.SerialNumber, CRL: "PCK CRL"}
	}
	for _, ca := range in.PCKChain[1 : len(in.PCKChain)-1] {
		if v.rootCRL.revoked(ca) {
			return nil, &RevokedError{Subject: ca.Subject.CommonName, Serial: ca.SerialNumber, CRL: "root CA CRL"}
		}
	}

	t, q := v.tcb, v.qe
	if t.FMSPC != pck.FMSPC || t.PCEID != pck.PCEID {
		return nil, fmt.Errorf("%w: the TCB info is for FMSPC %x PCE-ID %x, the PCK certificate for FMSPC %x PCE-ID %x",
			ErrCollateral, t.FMSPC, t.PCEID, pck.FMSPC, pck.PCEID)
	}
	qeLevel, err := q.Check(in.QE)
	if err != nil {
		return nil, err
	}
	m, err := t.Match(pck.TCB, in.TDX)
	if err != nil {
		return nil, err
	}

	r := &Result{
		PlatformStatus:    m.Level.Status,
		TCBLevel:          m.Level,
		QEStatus:          qeLevel.Status,
		QELevel:           *qeLevel,
		PCK:               pck,
		TCBInfo:           t,
		QEIdentity:        q,
		RevocationChecked: true,
	}
	r.Status = m.Level.Status
	r.Advisories = appendNew(nil, m.Level.AdvisoryIDs...)
	if m.ModuleLevel != nil {
		r.TDXModuleStatus, r.TDXModuleAdvisories = m.ModuleLevel.Status, m.ModuleLevel.AdvisoryIDs
		r.Status = Converge(r.Status, m.ModuleLevel.Status)
		r.Advisories = appendNew(r.Advisories, m.ModuleLevel.AdvisoryIDs...)
	}
	if in.TDX != nil && in.TDX.TEETCBSVN2 != nil {
		if r.Status, err = t.relaunch(*in.TDX.TEETCBSVN2, m.SGXLevel.Status, r.Status, r.TDXModuleStatus, qeLevel.Status); err != nil {
			return nil, err
		}
	}
	r.Status = Converge(r.Status, qeLevel.Status)
	r.Advisories = appendNew(r.Advisories, qeLevel.AdvisoryIDs...)
	return r, nil
}

// verifiedInputs are the kind, the root and PCK CA certificates (DER) and
// the seven collateral parts of an evaluation: everything verifyCollateral
// reads.
type verifiedInputs [10][]byte

func inputsOf(kind Kind, root, pckCA *x509.Certificate, c *Collateral) verifiedInputs {
	return verifiedInputs{[]byte(kind), root.Raw, pckCA.Raw, c.PCKCRL, c.PCKCRLIssuerChain, c.RootCACRL,
		c.TCBInfo, c.TCBInfoIssuerChain, c.QEIdentity, c.QEIdentityIssuerChain}
}

// hash is the cache key of the inputs: a seeded hash of the parts, each
// length-prefixed so that distinct part lists hash distinct strings. It is
// not cryptographic (a SHA-256 of the ten kilobytes of collateral would
// cost more than the rest of a warm evaluation): hits are confirmed by
// equal.
func (in *verifiedInputs) hash(seed maphash.Seed) uint64 {
	var h maphash.Hash
	h.SetSeed(seed)
	var n [8]byte
	for _, p := range in {
		binary.BigEndian.PutUint64(n[:], uint64(len(p)))
		h.Write(n[:])
		h.Write(p)
	}
	return h.Sum64()
}

// equal reports whether every part of in equals that of o.
func (in *verifiedInputs) equal(o *verifiedInputs) bool {
	for i := range in {
		if !bytes.Equal(in[i], o[i]) {
			return false
		}
	}
	return true
}

// appendNew appends the ids not yet in list.
func appendNew(list []string, ids ...string) []string {
	for _, id := range ids {
		if !slices.Contains(list, id) {
			list = append(list, id)
		}
	}
	return list
}

// verifyCollateral checks everything in c that does not depend on time
// beyond the chains' validity at now.
func verifyCollateral(kind Kind, c *Collateral, pckCA, root *x509.Certificate, now time.Time) (*verified, error) {
	// bad: collateral that is not genuine or does not parse, which a
	// caching Source should drop (RejectedError); a certificate of a
	// signing chain outside its validity is only stale.
	bad := func(what string, err error) error {
		if !errors.Is(err, ErrCollateral) {
			err = fmt.Errorf("%w: %s: %w", ErrCollateral, what, err)
		}
		var inv x509.CertificateInvalidError
		if errors.As(err, &inv) && inv.Reason == x509.Expired {
			return err
		}
		return &RejectedError{Err: err}
	}
	for what, b := range map[string][]byte{
		"PCK CRL": c.PCKCRL, "PCK CRL issuer chain": c.PCKCRLIssuerChain, "root CA CRL": c.RootCACRL,
		"TCB info": c.TCBInfo, "TCB info issuer chain": c.TCBInfoIssuerChain,
		"QE identity": c.QEIdentity, "QE identity issuer chain": c.QEIdentityIssuerChain,
	} {
		if len(b) == 0 {
			return nil, fmt.Errorf("%w: the %s is missing", ErrCollateral, what)
		}
	}
	v := &verified{}

	crl, err := ParseCRL(c.RootCACRL)
	if err != nil {
		return nil, bad("root CA CRL", err)
	}
	if v.rootCRL, err = verifyCRL(crl, root); err != nil {
		return nil, bad("root CA CRL", err)
	}

	crlSigner, crlChain, w, err := verifyIssuerChain(c.PCKCRLIssuerChain, root, now)
	if err != nil {
		return nil, bad("PCK CRL", err)
	}
	v.crlCh = w
	if !bytes.Equal(crlSigner.RawSubjectPublicKeyInfo, pckCA.RawSubjectPublicKeyInfo) {
		return nil, bad("", fmt.Errorf("%w: the PCK CRL issuer chain is for %q, not for the PCK certificate's CA %q (wrong PCK CA: processor or platform?)",
			ErrCollateral, crlSigner.Subject.CommonName, pckCA.Subject.CommonName))
	}
	if crl, err = ParseCRL(c.PCKCRL); err != nil {
		return nil, bad("PCK CRL", err)
	}
	if v.pckCRL, err = verifyCRL(crl, pckCA); err != nil {
		return nil, bad("PCK CRL", err)
	}

	wantTCB, wantQE := TCBInfoSGX, QEIdentitySGX
	if kind == TDX {
		wantTCB, wantQE = TCBInfoTDX, QEIdentityTDX
	}
	if v.tcb, err = ParseTCBInfo(c.TCBInfo); err != nil {
		return nil, bad("", err)
	}
	if v.tcb.ID != wantTCB {
		return nil, bad("", fmt.Errorf("%w: the TCB info is for %s, the quote is %s", ErrCollateral, v.tcb.ID, wantTCB))
	}
	tcbSigner, tcbChain, w, err := verifyTCBSigningChain(c.TCBInfoIssuerChain, root, now)
	if errors.Is(err, errNotTCBSigner) {
		return nil, bad("TCB info is not signed by Intel", err)
	}
	if err != nil {
		return nil, bad("TCB info", err)
	}
	v.tcbChain = w
	if err := verifyRS(tcbSigner, v.tcb.Signed, v.tcb.Signature); err != nil {
		return nil, bad("TCB info is not signed by Intel", err)
	}

	if v.qe, err = ParseQEIdentity(c.QEIdentity); err != nil {
		return nil, bad("", err)
	}
	if v.qe.ID != wantQE {
		return nil, bad("", fmt.Errorf("%w: the QE identity is %s, the quote needs %s", ErrCollateral, v.qe.ID, wantQE))
	}
	qeSigner, qeChain, w, err := verifyTCBSigningChain(c.QEIdentityIssuerChain, root, now)
	if errors.Is(err, errNotTCBSigner) {
		return nil, bad("QE identity is not signed by Intel", err)
	}
	if err != nil {
		return nil, bad("QE identity", err)
	}
	v.qeChain = w
	if err := verifyRS(qeSigner, v.qe.Signed, v.qe.Signature); err != nil {
		return nil, bad("QE identity is not signed by Intel", err)
	}

	// The PCK CA (the PCK CRL's signer) is checked with the PCK chain, as
	// a revoked certificate of the platform's chain; the collateral
	// signers here.
	for _, ch := range [][]*x509.Certificate{crlChain[1:], tcbChain, qeChain} {
		for _, cert := range ch {
			if !cert.Equal(root) && v.rootCRL.revoked(cert) {
				return nil, bad("", fmt.Errorf("%w: collateral signing certificate %q serial %x is revoked by the root CA CRL",
					ErrCollateral, cert.Subject.CommonName, cert.SerialNumber))
			}
		}
	}
	return v, nil
}

// current checks everything that depends on the time: the documents'
// validity first (an old collateral set reports "tcbInfo has expired"),
// then the CRLs' freshness and the signing chains' validity.
func (v *verified) current(now time.Time) error {
	for _, d := range []struct {
		what        string
		issue, next time.Time
	}{{"tcbInfo", v.tcb.IssueDate, v.tcb.NextUpdate}, {"QE identity (" + v.qe.ID + ")", v.qe.IssueDate, v.qe.NextUpdate}} {
		switch {
		case now.After(d.next):
			return fmt.Errorf("%w: %s has expired: its nextUpdate was %s; fetch fresh collateral", ErrCollateral, d.what, d.next.UTC().Format(time.RFC3339))
		case now.Before(d.issue):
			return fmt.Errorf("%w: %s is not yet valid: issued %s", ErrCollateral, d.what, d.issue.UTC().Format(time.RFC3339))
		}
	}
	if err := v.pckCRL.fresh(now, "PCK CRL"); err != nil {
		return err
	}
	if err := v.rootCRL.fresh(now, "root CA CRL"); err != nil {
		return err
	}
	for _, ch := range []struct {
		w    window
		what string
	}{{v.crlCh, "PCK CRL issuer chain"}, {v.tcbChain, "TCB info issuer chain"}, {v.qeChain, "QE identity issuer chain"}} {
		if !ch.w.contains(now) {
			return fmt.Errorf("%w: the %s is valid only from %s to %s", ErrCollateral, ch.what,
				ch.w.notBefore.UTC().Format(time.RFC3339), ch.w.notAfter.UTC().Format(time.RFC3339))
		}
	}
	return nil
}
