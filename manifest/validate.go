package manifest

import (
	"bytes"
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/trustbound/trustbound/attest"
	"github.com/trustbound/trustbound/identity"
)

// FieldError is one problem with a manifest, at the JSON path of the field.
type FieldError struct {
	// Path is like "workloads[1].reference.measurements[0]".
	Path string
	Msg  string
}

func (e *FieldError) Error() string {
	if e.Path == "" {
		return e.Msg
	}
	return e.Path + ": " + e.Msg
}

// Vendor TCB statuses (Intel's names; SNP verifiers map onto them).
const (
	TCBUpToDate                          = "UpToDate"
	TCBSWHardeningNeeded                 = "SWHardeningNeeded"
	TCBConfigurationNeeded               = "ConfigurationNeeded"
	TCBConfigurationAndSWHardeningNeeded = "ConfigurationAndSWHardeningNeeded"
	TCBOutOfDate                         = "OutOfDate"
	TCBOutOfDateConfigurationNeeded      = "OutOfDateConfigurationNeeded"
	// TDX 1.5: the platform is current but the TD runs on an outdated
	// module and should be relaunched.
	TCBTDRelaunchAdvised                    = "TDRelaunchAdvised"
	TCBTDRelaunchAdvisedConfigurationNeeded = "TDRelaunchAdvisedConfigurationNeeded"
	// TCBRevoked is never acceptable.
	TCBRevoked = "Revoked"
)

// acceptableTCB are the statuses a manifest may accept.
var acceptableTCB = []string{
	TCBUpToDate, TCBSWHardeningNeeded, TCBConfigurationNeeded,
	TCBConfigurationAndSWHardeningNeeded, TCBOutOfDate, TCBOutOfDateConfigurationNeeded,
	TCBTDRelaunchAdvised, TCBTDRelaunchAdvisedConfigurationNeeded,
}

// modelFact says which TEEs can host a model, and why.
type modelFact struct {
	model Model
	tees  []attest.TEE
	why   string
}

var modelFacts = []modelFact{
	{ConfidentialVM, []attest.TEE{attest.SEVSNP, attest.TDX},
		"a confidential VM needs a TEE that isolates a whole VM: sev-snp or tdx"},
	{Enclave, []attest.TEE{attest.SGX},
		"an enclave needs sgx: only SGX draws the boundary around part of a process"},
	{ConfidentialContainer, []attest.TEE{attest.SEVSNP, attest.TDX, attest.SGX},
		"a confidential container runs in a pod VM on sev-snp or tdx, or as an enclave-aware container on sgx"},
}

// Models lists the deployment models.
func Models() []Model {
	out := make([]Model, len(modelFacts))
	for i, f := range modelFacts {
		out[i] = f.model
	}
	return out
}

// TEEs lists the TEEs that can host the model; nil for an unknown model.
func (m Model) TEEs() []attest.TEE {
	for _, f := range modelFacts {
		if f.model == m {
			return slices.Clone(f.tees)
		}
	}
	return nil
}

// refField is a reference value as one TEE reports it; size 0 means the
// TEE has no such field.
type refField struct {
	name string
	size int
}

// teeFact says what a TEE's reference values are and what pins a workload.
type teeFact struct {
	tee                           attest.TEE
	measurement, signer, hostData refField
	// productID and minSVN name the TEE's field, "" if it has none.
	productID, minSVN string
	// signerPins: signer with productID pins a workload.
	signerPins bool
	// podPolicy names the field that binds a confidential container's pod
	// policy, "" where the container is an enclave and needs none.
	podPolicy string
}

var teeFacts = []teeFact{
	{
		tee:         attest.SEVSNP,
		measurement: refField{"SNP measurement", 48},
		signer:      refField{"SNP signer (author or ID key digest)", 48},
		hostData:    refField{"SNP hostData (HOST_DATA)", 32},
		minSVN:      "GUEST_SVN",
		podPolicy:   "HOST_DATA",
	},
	{
		tee:         attest.SGX,
		measurement: refField{"SGX measurement (MRENCLAVE)", 32},
		signer:      refField{"SGX signer (MRSIGNER)", 32},
		hostData:    refField{"SGX hostData (CONFIGID)", 64},
		productID:   "ISVPRODID",
		minSVN:      "ISVSVN",
		signerPins:  true,
	},
	{
		tee:         attest.TDX,
		measurement: refField{"TDX measurement (MRTD)", 48},
		hostData:    refField{"TDX hostData (MRCONFIGID)", 48},
		podPolicy:   "MRCONFIGID",
	},
}

var knownTEEs = func() []attest.TEE {
	var out []attest.TEE
	for _, f := range teeFacts {
		out = append(out, f.tee)
	}
	return out
}()

var (
	secretTypes   = []SecretType{Symmetric, KeyPair, User, X509}
	symmetricBits = []int{128, 192, 256}
	keyAlgorithms = []string{"ec-p256", "ec-p384", "ed25519", "rsa-2048", "rsa-3072"}
)

// Validate checks the manifest against every rule and reports all problems
// at once, each a *FieldError, joined with errors.Join. It returns nil for
// a valid manifest.
func (m *Manifest) Validate() error {
	var c checker
	switch m.Version {
	case 1:
	case 0:
		c.add("version", "version is required; set it to 1")
	default:
		c.add("version", "unsupported version %d; this release reads version 1", m.Version)
	}
	c.trustDomain(m.TrustDomain)
	c.owners(m.Owners)
	c.workloads(m.Workloads)
	c.secrets(m.Secrets, m)
	return errors.Join(c.errs...)
}

type checker struct{ errs []error }

func (c *checker) add(path, format string, args ...any) {
	c.errs = append(c.errs, &FieldError{Path: path, Msg: fmt.Sprintf(format, args...)})
}

// trustDomain checks a SPIFFE trust domain name.
func (c *checker) trustDomain(td string) {
	const p = "trustDomain"
	switch {
	case td == "":
		c.add(p, "trust domain is required: the SPIFFE trust domain of issued identities, e.g. example.org")
	case strings.Contains(td, "://"):
		c.add(p, "write the trust domain without a scheme (example.org, not spiffe://example.org)")
	case strings.Contains(td, "/"):
		c.add(p, "a trust domain has no path")
	case strings.Contains(td, ":"):
		c.add(p, "a trust domain has no port")
	case len(td) > 255:
		c.add(p, "trust domain is %d characters; at most 255", len(td))
	case strings.ToLower(td) != td:
		c.add(p, "trust domain must be lower case: %q", strings.ToLower(td))
	default:
		if i := strings.IndexFunc(td, func(r rune) bool { return !isLowerAlnum(r) && r != '.' && r != '-' && r != '_' }); i >= 0 {
			c.add(p, "character %q not allowed in a trust domain: use lower-case letters, digits, '.', '-' and '_'", td[i:][0])
		}
	}
}

func isLowerAlnum(r rune) bool { return 'a' <= r && r <= 'z' || '0' <= r && r <= '9' }

func (c *checker) owners(owners []Owner) {
	if len(owners) == 0 {
		c.add("owners", "at least one owner is required: owners sign every change to the manifest")
		return
	}
	names := make(map[string]int)
	keys := make(map[string]int)
	for i, o := range owners {
		p := fmt.Sprintf("owners[%d]", i)
		switch j, dup := names[o.Name]; {
		case o.Name == "":
			c.add(p+".name", "owner name is required")
		case dup:
			c.add(p+".name", "duplicate owner name %q (also owners[%d])", o.Name, j)
		default:
			names[o.Name] = i
		}
		_, der, msg := ownerKey(o.PublicKey)
		if msg != "" {
			c.add(p+".publicKey", "%s", msg)
			continue
		}
		if j, dup := keys[string(der)]; dup {
			c.add(p+".publicKey", "same key as owners[%d]: each owner needs its own key", j)
			continue
		}
		keys[string(der)] = i
	}
}

const ownerKeyKinds = "use an ECDSA P-256 or P-384 or an Ed25519 key"

// Key parses the owner's PublicKey and returns an *ecdsa.PublicKey (P-256
// or P-384) or an ed25519.PublicKey; any other key is an error.
func (o Owner) Key() (crypto.PublicKey, error) {
	k, _, msg := ownerKey(o.PublicKey)
	if msg != "" {
		return nil, fmt.Errorf("owner %q: %s", o.Name, msg)
	}
	return k, nil
}

// ownerKey parses a PEM PKIX public key and returns it with its DER, or
// why it is not an acceptable owner key.
func ownerKey(s string) (crypto.PublicKey, []byte, string) {
	if strings.TrimSpace(s) == "" {
		return nil, nil, "publicKey is required: a PEM PUBLIC KEY; " + ownerKeyKinds
	}
	block, rest := pem.Decode([]byte(s))
	switch {
	case block == nil:
		return nil, nil, "publicKey is not PEM: want -----BEGIN PUBLIC KEY-----; " + ownerKeyKinds
	case len(bytes.TrimSpace(rest)) > 0:
		return nil, nil, "publicKey holds more than one PEM block; want exactly one PUBLIC KEY"
	case block.Type == "RSA PUBLIC KEY":
		return nil, nil, "RSA keys are not accepted as owner keys; " + ownerKeyKinds
	case block.Type != "PUBLIC KEY":
		return nil, nil, fmt.Sprintf("PEM block is %q; want PUBLIC KEY (PKIX)", block.Type)
	}
	key, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, nil, fmt.Sprintf("public key does not parse: %v", err)
	}
	switch k := key.(type) {
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() && k.Curve != elliptic.P384() {
			return nil, nil, fmt.Sprintf("ECDSA curve %s is not accepted; %s", k.Curve.Params().Name, ownerKeyKinds)
		}
	case ed25519.PublicKey:
	case *rsa.PublicKey:
		return nil, nil, "RSA keys are not accepted as owner keys; " + ownerKeyKinds
	case *ecdh.PublicKey:
		return nil, nil, "an X25519 key cannot sign; " + ownerKeyKinds
	default:
		return nil, nil, fmt.Sprintf("%T keys are not accepted; %s", key, ownerKeyKinds)
	}
	return key, block.Bytes, ""
}

func (c *checker) workloads(ws []Workload) {
	if len(ws) == 0 {
		c.add("workloads", "at least one workload is required")
		return
	}
	names := make(map[string]int)
	for i, w := range ws {
		p := fmt.Sprintf("workloads[%d]", i)
		j, dup := names[w.Name]
		switch {
		case w.Name == "":
			c.add(p+".name", "workload name is required")
		case !isDNSLabel(w.Name):
			c.add(p+".name", "workload name %q must be a DNS label (a-z, 0-9 and '-', at most 63, no '-' at either end): it becomes part of the workload's SPIFFE ID", w.Name)
		case dup:
			c.add(p+".name", "duplicate workload name %q (also workloads[%d])", w.Name, j)
		default:
			names[w.Name] = i
		}
		c.workload(p, w)
	}
}

func (c *checker) workload(p string, w Workload) {
	mi := slices.IndexFunc(modelFacts, func(f modelFact) bool { return f.model == w.Model })
	switch {
	case w.Model == "":
		c.add(p+".model", "model is required; want one of %s", list(Models()))
	case mi < 0:
		c.add(p+".model", "unknown model %q; want one of %s", w.Model, list(Models()))
	}
	ti := slices.IndexFunc(knownTEEs, func(t attest.TEE) bool { return t == w.TEE })
	switch {
	case w.TEE == "":
		c.add(p+".tee", "tee is required; want one of %s", list(knownTEEs))
		return
	case ti < 0:
		c.add(p+".tee", "unknown tee %q; want one of %s", w.TEE, list(knownTEEs))
		return
	}
	if mi >= 0 && !slices.Contains(modelFacts[mi].tees, w.TEE) {
		c.add(p+".tee", "%s cannot run on %s: %s", w.Model, w.TEE, modelFacts[mi].why)
	}
	c.reference(p+".reference", w, ti)
	c.policies(p+".policies", w.Policies)
}

// MaxPolicyName bounds the length of a policy name.
const MaxPolicyName = 128

// IsPolicyName reports whether s may name a policy: 1 to MaxPolicyName
// characters of a-z, 0-9, '.', '_' and '-'.
func IsPolicyName(s string) bool {
	if s == "" || len(s) > MaxPolicyName {
		return false
	}
	return strings.IndexFunc(s, func(r rune) bool { return !isLowerAlnum(r) && r != '.' && r != '_' && r != '-' }) < 0
}

func (c *checker) policies(p string, names []string) {
	seen := make(map[string]int)
	for i, n := range names {
		ip := fmt.Sprintf("%s[%d]", p, i)
		j, dup := seen[n]
		switch {
		case !IsPolicyName(n):
			c.add(ip, "policy name %q must be 1 to %d of a-z, 0-9, '.', '_' and '-'", n, MaxPolicyName)
		case dup:
			c.add(ip, "policy %q is named twice (also %s[%d])", n, p, j)
		default:
			seen[n] = i
		}
	}
}

func (c *checker) reference(p string, w Workload, ti int) {
	f := teeFacts[ti]
	r := w.Reference
	size := func(path string, rf refField, v []byte) {
		if len(v) != rf.size {
			c.add(path, "%s must be %d bytes, got %d", rf.name, rf.size, len(v))
		}
	}
	for i, m := range r.Measurements {
		size(fmt.Sprintf("%s.measurements[%d]", p, i), f.measurement, m)
	}
	if r.Signer != nil {
		if f.signer.size == 0 {
			c.add(p+".signer", "%s has no signer to check; pin measurements and hostData instead", w.TEE)
		} else {
			size(p+".signer", f.signer, r.Signer)
		}
	}
	if r.HostData != nil {
		size(p+".hostData", f.hostData, r.HostData)
	}
	if r.ProductID != nil && f.productID == "" {
		c.add(p+".productID", "productID is the SGX ISVPRODID; %s has none", w.TEE)
	}
	if r.MinSVN != nil && f.minSVN == "" {
		c.add(p+".minSVN", "minSVN is the SGX ISVSVN or SNP GUEST_SVN; %s has none", w.TEE)
	}
	if w.TEE != attest.SEVSNP {
		if r.MinTCB != nil {
			c.add(p+".minTCB", "minTCB names SNP TCB components; %s has none", w.TEE)
		}
		if r.VMPL != nil {
			c.add(p+".vmpl", "vmpl is an SNP privilege level; %s has none", w.TEE)
		}
		if r.AllowMigrationAgent {
			c.add(p+".allowMigrationAgent", "a migration agent is an SNP policy bit; %s has none", w.TEE)
		}
	}
	seenPCR := map[uint8]int{}
	for i, pcr := range r.PCRs {
		pp := fmt.Sprintf("%s.pcrs[%d]", p, i)
		if w.TEE == attest.SGX {
			c.add(pp, "an enclave has no vTPM PCRs")
		}
		if pcr.Index > 23 {
			c.add(pp+".index", "PCR index is 0 to 23, got %d", pcr.Index)
		}
		if j, dup := seenPCR[pcr.Index]; dup {
			c.add(pp+".index", "PCR %d is pinned twice (also pcrs[%d])", pcr.Index, j)
		}
		seenPCR[pcr.Index] = i
		if len(pcr.Digest) != 32 {
			c.add(pp+".digest", "a SHA-256 PCR is 32 bytes, got %d", len(pcr.Digest))
		}
	}
	if r.TDX != nil {
		if w.TEE != attest.TDX {
			c.add(p+".tdx", "tdx registers are for TDX workloads; %s has none", w.TEE)
		}
		for name, v := range r.TDX.Pinned() {
			if len(v) != 48 {
				c.add(p+".tdx."+name, "%s must be 48 bytes, got %d", name, len(v))
			}
		}
	}
	if len(r.AcceptedAdvisories) > 0 && w.TEE == attest.SEVSNP {
		c.add(p+".acceptedAdvisories", "AMD publishes no advisory IDs in SNP evidence; pin minTCB instead")
	}
	for i, a := range r.AcceptedAdvisories {
		if a != "*" && !isAdvisoryID(a) {
			c.add(fmt.Sprintf("%s.acceptedAdvisories[%d]", p, i), "advisory %q is not an ID like INTEL-SA-00615 (or \"*\")", a)
		}
	}
	if r.VMPL != nil && *r.VMPL > 3 {
		c.add(p+".vmpl", "VMPL is 0 to 3, got %d", *r.VMPL)
	}
	switch {
	case len(r.Measurements) > 0:
	case f.signerPins && r.Signer != nil && r.ProductID == nil:
		c.add(p+".productID", "an %s signer pins a workload only together with productID: one signing key signs many enclaves", w.TEE)
	case f.signerPins && r.Signer != nil:
	case f.signerPins:
		c.add(p, "workload is not pinned: set measurements (MRENCLAVE), or signer (MRSIGNER) and productID")
	default:
		c.add(p, "workload is not pinned: set measurements (%s)", f.measurement.name)
	}
	if w.Model == ConfidentialContainer && f.podPolicy != "" && r.HostData == nil {
		c.add(p+".hostData", "a confidential-container on %s must pin hostData, the hash of its pod's agent policy (%s): the policy is inside the pod's trust boundary and decides what the host may run, exec or read in the pod, so an unpinned policy lets the cluster admin in", w.TEE, f.podPolicy)
	}
	seen := make(map[string]bool)
	for i, s := range r.AcceptedTCB {
		ap := fmt.Sprintf("%s.acceptedTCB[%d]", p, i)
		switch {
		case s == TCBRevoked:
			c.add(ap, "Revoked is never acceptable: the vendor has revoked the platform's attestation keys")
		case !slices.Contains(acceptableTCB, s):
			c.add(ap, "unknown TCB status %q; want one of %s", s, list(acceptableTCB))
		case seen[s]:
			c.add(ap, "duplicate TCB status %q", s)
		}
		seen[s] = true
	}
}

func (c *checker) secrets(ss []Secret, m *Manifest) {
	names := make(map[string]int)
	for i, s := range ss {
		p := fmt.Sprintf("secrets[%d]", i)
		j, dup := names[s.Name]
		switch {
		case s.Name == "":
			c.add(p+".name", "secret name is required")
		case s.Name == "." || s.Name == "..":
			c.add(p+".name", "secret name cannot be %q", s.Name)
		case strings.IndexFunc(s.Name, func(r rune) bool { return !isSecretNameRune(r) }) >= 0:
			c.add(p+".name", "secret name %q may use only letters, digits, '.', '_' and '-'", s.Name)
		case dup:
			c.add(p+".name", "duplicate secret name %q (also secrets[%d])", s.Name, j)
		default:
			names[s.Name] = i
		}
		switch {
		case s.Type == "":
			c.add(p+".type", "type is required; want one of %s", list(secretTypes))
		case !slices.Contains(secretTypes, s.Type):
			c.add(p+".type", "unknown secret type %q; want one of %s", s.Type, list(secretTypes))
		}
		switch {
		case s.Type == Symmetric && s.Bits != 0 && !slices.Contains(symmetricBits, s.Bits):
			c.add(p+".bits", "a symmetric key is 128, 192 or 256 bits (0 means 256), not %d", s.Bits)
		case s.Type != Symmetric && s.Bits != 0:
			c.add(p+".bits", "bits is only for symmetric secrets")
		}
		switch {
		case s.Type == KeyPair || s.Type == X509:
			if s.Algorithm != "" && !slices.Contains(keyAlgorithms, s.Algorithm) {
				c.add(p+".algorithm", "unknown algorithm %q; want one of %s (default ec-p256)", s.Algorithm, list(keyAlgorithms))
			}
		case s.Algorithm != "":
			c.add(p+".algorithm", "algorithm is only for keypair and x509 secrets")
		}
		if s.Type == X509 {
			c.certNames(p, s)
		} else {
			if s.Subject != "" {
				c.add(p+".subject", "subject is only for x509 secrets")
			}
			if len(s.DNSNames) > 0 {
				c.add(p+".dnsNames", "dnsNames is only for x509 secrets")
			}
		}
		if s.ReleasePolicy != "" && !IsPolicyName(s.ReleasePolicy) {
			c.add(p+".releasePolicy", "invalid policy name %q: 1 to %d of a-z, 0-9, '.', '_' and '-'", s.ReleasePolicy, MaxPolicyName)
		}
		if len(s.GrantedTo) == 0 {
			c.add(p+".grantedTo", "grant the secret to at least one workload")
		}
		granted := make(map[string]bool)
		for k, w := range s.GrantedTo {
			gp := fmt.Sprintf("%s.grantedTo[%d]", p, k)
			if _, ok := m.Workload(w); !ok {
				c.add(gp, "no workload named %q", w)
			} else if granted[w] {
				c.add(gp, "%q is granted twice", w)
			}
			granted[w] = true
		}
	}
}

// certNames applies to an x509 secret's names the very check the CA applies
// when it issues the certificate, so that a valid manifest never blocks a
// release.
func (c *checker) certNames(p string, s Secret) {
	err := identity.CheckSecretCertNames(s.Subject, s.DNSNames)
	if err == nil {
		return
	}
	errs := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	}
	for _, e := range errs {
		var ne *identity.SecretNameError
		switch {
		case !errors.As(e, &ne):
			c.add(p, "%v", e)
		case ne.Param == identity.ParamSubject:
			c.add(p+".subject", "%s", ne.Msg)
		case ne.Param == identity.ParamDNSNames:
			c.add(fmt.Sprintf("%s.dnsNames[%d]", p, ne.Index), "%s", ne.Msg)
		default:
			c.add(p, "%s", ne.Msg)
		}
	}
}

func isSecretNameRune(r rune) bool {
	return isLowerAlnum(r) || 'A' <= r && r <= 'Z' || r == '.' || r == '_' || r == '-'
}

// isDNSLabel reports whether s is a lower-case RFC 1123 label.
func isDNSLabel(s string) bool {
	if len(s) == 0 || len(s) > 63 || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	return strings.IndexFunc(s, func(r rune) bool { return !isLowerAlnum(r) && r != '-' }) < 0
}

func list[T ~string](vs []T) string {
	s := make([]string, len(vs))
	for i, v := range vs {
		s[i] = string(v)
	}
	return strings.Join(s, ", ")
}

// isAdvisoryID reports whether s looks like a vendor advisory ID
// (INTEL-SA-00615).
func isAdvisoryID(s string) bool {
	vendor, num, ok := strings.Cut(s, "-SA-")
	if !ok || vendor == "" || num == "" {
		return false
	}
	for _, r := range vendor {
		if r < 'A' || r > 'Z' {
			return false
		}
	}
	for _, r := range num {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}
