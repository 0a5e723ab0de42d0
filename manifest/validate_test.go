package manifest

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/trustbound/trustbound/attest"
	"github.com/trustbound/trustbound/identity"
)

// Keys the manifest must refuse as owner keys.
const (
	rsaPEM = `-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAw9xc6fOLRE/f3PkLfffJ
YifZPDhbh/AwFllqdXyxG5lVtHMOQ7QquSUt8UYg2X/d7X1DysdUvxPq1h/x2CsO
BSOozPNBB+1PWe37oFrHGCEbSOtz+dXkk7BaWuzDZkF8Bo9NengIMmcYbqVdYtem
Gue59v/YDps3l/2vV8V1hr7OIZyAL80LzL2eXClLusBtmI46CoN/+63VUPezhBos
wu4cKfCUfE/fu2siKB/jhUG9/5+AHKcwEgFWOXTkUAzXBzHWckdDVClJuyx8Aqz/
z1aTDysjX22S7y+JvoKuhT9SG0RYG4M0MZRBSv1tldI/z3jZE8/avV+7i9WPi0CH
mwIDAQAB
-----END PUBLIC KEY-----
`
	p521PEM = `-----BEGIN PUBLIC KEY-----
MIGbMBAGByqGSM49AgEGBSuBBAAjA4GGAAQABeFAih81F3V+Za/M8iTidmMGCT0M
Y9IzVf24y+cCvu7Yn7gP954XLPCZxVyEji5nq0x3NoHsjJFyOHeoUJO11HYAMQdh
iFq63wt9V0VHGLN2L9F3A/NicPcAxTCvNtIf/ctu4E827igz64kOICGbzgjt2yQ7
0sFKk9kXP+mCaqqmFjE=
-----END PUBLIC KEY-----
`
)

func x25519PEM(t testing.TB) string {
	k, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(k.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

// fieldErrors unpacks Validate's error.
func fieldErrors(t testing.TB, err error) []*FieldError {
	t.Helper()
	if err == nil {
		return nil
	}
	j, ok := err.(interface{ Unwrap() []error })
	if !ok {
		t.Fatalf("Validate error %T is not joined", err)
	}
	var out []*FieldError
	for _, e := range j.Unwrap() {
		fe, ok := e.(*FieldError)
		if !ok {
			t.Fatalf("problem %T %q is not a *FieldError", e, e)
		}
		out = append(out, fe)
	}
	return out
}

func goodManifest(t testing.TB) *Manifest {
	t.Helper()
	m, err := Parse(readTestdata(t, "good.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func n(b byte, size int) attest.Hex { return bytes.Repeat([]byte{b}, size) }

func ptr[T any](v T) *T { return &v }

// addTDX appends workload 3: a pinned confidential VM on TDX.
func addTDX(m *Manifest) *Workload {
	m.Workloads = append(m.Workloads, Workload{
		Name: "td", Model: ConfidentialVM, TEE: attest.TDX,
		Reference: Reference{Measurements: []attest.Hex{n(7, 48)}},
	})
	return &m.Workloads[3]
}

func TestValidateRules(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(m *Manifest)
		path   string
		msg    string
	}{
		// Manifest.
		{"version missing", func(m *Manifest) { m.Version = 0 }, "version", "version is required; set it to 1"},
		{"version 2", func(m *Manifest) { m.Version = 2 }, "version", "unsupported version 2"},
		{"trust domain missing", func(m *Manifest) { m.TrustDomain = "" }, "trustDomain", "trust domain is required"},
		{"trust domain scheme", func(m *Manifest) { m.TrustDomain = "spiffe://example.org" }, "trustDomain", "without a scheme"},
		{"trust domain path", func(m *Manifest) { m.TrustDomain = "example.org/x" }, "trustDomain", "has no path"},
		{"trust domain port", func(m *Manifest) { m.TrustDomain = "example.org:443" }, "trustDomain", "has no port"},
		{"trust domain upper case", func(m *Manifest) { m.TrustDomain = "Example.org" }, "trustDomain", `must be lower case: "example.org"`},
		{"trust domain character", func(m *Manifest) { m.TrustDomain = "exa mple.org" }, "trustDomain", `character ' ' not allowed`},
		{"trust domain too long", func(m *Manifest) { m.TrustDomain = strings.Repeat("a", 256) }, "trustDomain", "at most 255"},

		// Owners.
		{"no owner", func(m *Manifest) { m.Owners = nil }, "owners", "at least one owner is required"},
		{"owner name missing", func(m *Manifest) { m.Owners[1].Name = "" }, "owners[1].name", "owner name is required"},
		{"owner name duplicate", func(m *Manifest) { m.Owners[1].Name = "alice" }, "owners[1].name", `duplicate owner name "alice" (also owners[0])`},
		{"owner key missing", func(m *Manifest) { m.Owners[0].PublicKey = " \n" }, "owners[0].publicKey", "publicKey is required"},
		{"owner key not PEM", func(m *Manifest) { m.Owners[0].PublicKey = "MFkwEwYH" }, "owners[0].publicKey", "publicKey is not PEM"},
		{"owner key RSA", func(m *Manifest) { m.Owners[0].PublicKey = rsaPEM }, "owners[0].publicKey", "RSA keys are not accepted as owner keys; use an ECDSA P-256 or P-384 or an Ed25519 key"},
		{"owner key PKCS1 RSA", func(m *Manifest) {
			m.Owners[0].PublicKey = string(pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: []byte{0x30, 0}}))
		}, "owners[0].publicKey", "RSA keys are not accepted"},
		{"owner key P-521", func(m *Manifest) { m.Owners[0].PublicKey = p521PEM }, "owners[0].publicKey", "ECDSA curve P-521 is not accepted"},
		{"owner key X25519", func(m *Manifest) { m.Owners[0].PublicKey = x25519PEM(t) }, "owners[0].publicKey", "an X25519 key cannot sign"},
		{"owner key certificate", func(m *Manifest) {
			m.Owners[0].PublicKey = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{0x30, 0}}))
		}, "owners[0].publicKey", `PEM block is "CERTIFICATE"; want PUBLIC KEY (PKIX)`},
		{"owner key two blocks", func(m *Manifest) { m.Owners[0].PublicKey += m.Owners[1].PublicKey }, "owners[0].publicKey", "more than one PEM block"},
		{"owner key garbage", func(m *Manifest) {
			m.Owners[0].PublicKey = string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: []byte("junk")}))
		}, "owners[0].publicKey", "public key does not parse"},
		{"owner key shared", func(m *Manifest) { m.Owners[1].PublicKey = m.Owners[0].PublicKey }, "owners[1].publicKey", "same key as owners[0]"},

		// Workloads.
		{"no workload", func(m *Manifest) { m.Workloads, m.Secrets = nil, nil }, "workloads", "at least one workload is required"},
		{"workload name missing", func(m *Manifest) { m.Workloads[0].Name, m.Secrets = "", nil }, "workloads[0].name", "workload name is required"},
		{"policy name upper case", func(m *Manifest) { m.Workloads[1].Policies = []string{"ok", "Azure-SevSnpVm"} }, "workloads[1].policies[1]", `policy name "Azure-SevSnpVm" must be`},
		{"policy name empty", func(m *Manifest) { m.Workloads[0].Policies = []string{""} }, "workloads[0].policies[0]", `policy name "" must be`},
		{"policy name slash", func(m *Manifest) { m.Workloads[0].Policies = []string{"a/b"} }, "workloads[0].policies[0]", `policy name "a/b" must be`},
		{"policy named twice", func(m *Manifest) { m.Workloads[0].Policies = []string{"a.rego", "b", "a.rego"} }, "workloads[0].policies[2]", `policy "a.rego" is named twice (also workloads[0].policies[0])`},
		{"workload name upper case", func(m *Manifest) { m.Workloads[0].Name, m.Secrets = "Ledger", nil }, "workloads[0].name", `workload name "Ledger" must be a DNS label`},
		{"workload name leading dash", func(m *Manifest) { m.Workloads[0].Name, m.Secrets = "-a", nil }, "workloads[0].name", "must be a DNS label"},
		{"workload name dot", func(m *Manifest) { m.Workloads[0].Name, m.Secrets = "a.b", nil }, "workloads[0].name", "must be a DNS label"},
		{"workload name too long", func(m *Manifest) { m.Workloads[0].Name, m.Secrets = strings.Repeat("a", 64), nil }, "workloads[0].name", "SPIFFE ID"},
		{"workload name duplicate", func(m *Manifest) { m.Workloads[2].Name, m.Secrets = "ledger-vm", nil }, "workloads[2].name", `duplicate workload name "ledger-vm" (also workloads[0])`},
		{"model missing", func(m *Manifest) { m.Workloads[0].Model = "" }, "workloads[0].model", "model is required; want one of confidential-vm, enclave, confidential-container"},
		{"model unknown", func(m *Manifest) { m.Workloads[0].Model = "vm" }, "workloads[0].model", `unknown model "vm"`},
		{"tee missing", func(m *Manifest) { m.Workloads[0].TEE = "" }, "workloads[0].tee", "tee is required; want one of sev-snp, sgx, tdx"},
		{"tee unknown", func(m *Manifest) { m.Workloads[0].TEE = "sev" }, "workloads[0].tee", `unknown tee "sev"`},
		{"enclave on sev-snp", func(m *Manifest) { m.Workloads[0].Model = Enclave }, "workloads[0].tee", "enclave cannot run on sev-snp: an enclave needs sgx"},
		{"enclave on tdx", func(m *Manifest) { addTDX(m).Model = Enclave }, "workloads[3].tee", "enclave cannot run on tdx"},
		{"confidential-vm on sgx", func(m *Manifest) { m.Workloads[1].Model = ConfidentialVM }, "workloads[1].tee", "confidential-vm cannot run on sgx: a confidential VM needs a TEE that isolates a whole VM: sev-snp or tdx"},

		// Reference sizes.
		{"SNP measurement size", func(m *Manifest) { m.Workloads[0].Reference.Measurements[1] = n(1, 32) }, "workloads[0].reference.measurements[1]", "SNP measurement must be 48 bytes, got 32"},
		{"SNP signer size", func(m *Manifest) { m.Workloads[0].Reference.Signer = n(1, 32) }, "workloads[0].reference.signer", "SNP signer (author or ID key digest) must be 48 bytes, got 32"},
		{"SNP hostData size", func(m *Manifest) { m.Workloads[2].Reference.HostData = n(1, 48) }, "workloads[2].reference.hostData", "SNP hostData (HOST_DATA) must be 32 bytes, got 48"},
		{"minTCB on sgx", func(m *Manifest) { m.Workloads[1].Reference.MinTCB = &TCBFloor{SNP: ptr[uint8](1)} }, "workloads[1].reference.minTCB", "minTCB names SNP TCB components; sgx has none"},
		{"vmpl on sgx", func(m *Manifest) { m.Workloads[1].Reference.VMPL = ptr[uint32](0) }, "workloads[1].reference.vmpl", "vmpl is an SNP privilege level"},
		{"migration agent on sgx", func(m *Manifest) { m.Workloads[1].Reference.AllowMigrationAgent = true }, "workloads[1].reference.allowMigrationAgent", "SNP policy bit"},
		{"vmpl out of range", func(m *Manifest) { m.Workloads[0].Reference.VMPL = ptr[uint32](4) }, "workloads[0].reference.vmpl", "VMPL is 0 to 3, got 4"},
		{"tdx registers on sgx", func(m *Manifest) { m.Workloads[1].Reference.TDX = &TDXRegisters{RTMR0: n(1, 48)} }, "workloads[1].reference.tdx", "tdx registers are for TDX workloads"},
		{"tdx register size", func(m *Manifest) { addTDX(m).Reference.TDX = &TDXRegisters{RTMR2: n(1, 32)} }, "workloads[3].reference.tdx.rtmr2", "rtmr2 must be 48 bytes, got 32"},
		{"advisories on snp", func(m *Manifest) { m.Workloads[0].Reference.AcceptedAdvisories = []string{"INTEL-SA-00615"} }, "workloads[0].reference.acceptedAdvisories", "pin minTCB instead"},
		{"advisory malformed", func(m *Manifest) { m.Workloads[1].Reference.AcceptedAdvisories = []string{"sa-1"} }, "workloads[1].reference.acceptedAdvisories[0]", `advisory "sa-1" is not an ID`},
		{"pcr on sgx", func(m *Manifest) { m.Workloads[1].Reference.PCRs = []PCR{{Index: 0, Digest: n(1, 32)}} }, "workloads[1].reference.pcrs[0]", "an enclave has no vTPM PCRs"},
		{"pcr index", func(m *Manifest) { m.Workloads[0].Reference.PCRs = []PCR{{Index: 24, Digest: n(1, 32)}} }, "workloads[0].reference.pcrs[0].index", "PCR index is 0 to 23, got 24"},
		{"pcr twice", func(m *Manifest) {
			m.Workloads[0].Reference.PCRs = []PCR{{Index: 7, Digest: n(1, 32)}, {Index: 7, Digest: n(2, 32)}}
		}, "workloads[0].reference.pcrs[1].index", "PCR 7 is pinned twice (also pcrs[0])"},
		{"pcr digest size", func(m *Manifest) { m.Workloads[0].Reference.PCRs = []PCR{{Index: 0, Digest: n(1, 48)}} }, "workloads[0].reference.pcrs[0].digest", "a SHA-256 PCR is 32 bytes, got 48"},
		{"SGX measurement size", func(m *Manifest) { m.Workloads[1].Reference.Measurements[0] = n(1, 48) }, "workloads[1].reference.measurements[0]", "SGX measurement (MRENCLAVE) must be 32 bytes, got 48"},
		{"SGX signer size", func(m *Manifest) { m.Workloads[1].Reference.Signer = n(1, 48) }, "workloads[1].reference.signer", "SGX signer (MRSIGNER) must be 32 bytes, got 48"},
		{"SGX hostData size", func(m *Manifest) { m.Workloads[1].Reference.HostData = n(1, 32) }, "workloads[1].reference.hostData", "SGX hostData (CONFIGID) must be 64 bytes, got 32"},
		{"TDX measurement size", func(m *Manifest) { addTDX(m).Reference.Measurements[0] = n(1, 32) }, "workloads[3].reference.measurements[0]", "TDX measurement (MRTD) must be 48 bytes, got 32"},
		{"TDX hostData size", func(m *Manifest) { addTDX(m).Reference.HostData = n(1, 32) }, "workloads[3].reference.hostData", "TDX hostData (MRCONFIGID) must be 48 bytes, got 32"},
		{"TDX signer", func(m *Manifest) { addTDX(m).Reference.Signer = n(1, 48) }, "workloads[3].reference.signer", "tdx has no signer to check"},
		{"TDX productID", func(m *Manifest) { addTDX(m).Reference.ProductID = ptr[uint16](1) }, "workloads[3].reference.productID", "productID is the SGX ISVPRODID; tdx has none"},
		{"TDX minSVN", func(m *Manifest) { addTDX(m).Reference.MinSVN = ptr[uint32](1) }, "workloads[3].reference.minSVN", "minSVN is the SGX ISVSVN or SNP GUEST_SVN; tdx has none"},
		{"SNP productID", func(m *Manifest) { m.Workloads[0].Reference.ProductID = ptr[uint16](1) }, "workloads[0].reference.productID", "sev-snp has none"},

		// Pinning.
		{"SNP not pinned", func(m *Manifest) { m.Workloads[0].Reference.Measurements = nil }, "workloads[0].reference", "workload is not pinned: set measurements (SNP measurement)"},
		{"TDX not pinned", func(m *Manifest) { addTDX(m).Reference.Measurements = nil }, "workloads[3].reference", "workload is not pinned: set measurements (TDX measurement (MRTD))"},
		{"SNP signer does not pin", func(m *Manifest) {
			m.Workloads[0].Reference = Reference{Signer: n(1, 48)}
		}, "workloads[0].reference", "workload is not pinned"},
		{"SGX not pinned", func(m *Manifest) {
			m.Workloads[1].Reference.Measurements, m.Workloads[1].Reference.Signer = nil, nil
		}, "workloads[1].reference", "workload is not pinned: set measurements (MRENCLAVE), or signer (MRSIGNER) and productID"},
		{"SGX signer without productID", func(m *Manifest) {
			m.Workloads[1].Reference.Measurements, m.Workloads[1].Reference.ProductID = nil, nil
		}, "workloads[1].reference.productID", "an sgx signer pins a workload only together with productID"},
		{"container on SNP without hostData", func(m *Manifest) { m.Workloads[2].Reference.HostData = nil }, "workloads[2].reference.hostData",
			"a confidential-container on sev-snp must pin hostData, the hash of its pod's agent policy (HOST_DATA): the policy is inside the pod's trust boundary"},
		{"container on TDX without hostData", func(m *Manifest) { addTDX(m).Model = ConfidentialContainer }, "workloads[3].reference.hostData", "on tdx must pin hostData, the hash of its pod's agent policy (MRCONFIGID)"},

		// TCB statuses.
		{"TCB Revoked", func(m *Manifest) { m.Workloads[1].Reference.AcceptedTCB[1] = "Revoked" }, "workloads[1].reference.acceptedTCB[1]", "Revoked is never acceptable"},
		{"TCB unknown", func(m *Manifest) { m.Workloads[1].Reference.AcceptedTCB[0] = "uptodate" }, "workloads[1].reference.acceptedTCB[0]", `unknown TCB status "uptodate"; want one of UpToDate, SWHardeningNeeded, ConfigurationNeeded, ConfigurationAndSWHardeningNeeded, OutOfDate, OutOfDateConfigurationNeeded`},
		{"TCB duplicate", func(m *Manifest) { m.Workloads[1].Reference.AcceptedTCB[1] = TCBUpToDate }, "workloads[1].reference.acceptedTCB[1]", `duplicate TCB status "UpToDate"`},

		// Secrets.
		{"secret name missing", func(m *Manifest) { m.Secrets[0].Name = "" }, "secrets[0].name", "secret name is required"},
		{"secret name slash", func(m *Manifest) { m.Secrets[0].Name = "a/b" }, "secrets[0].name", `secret name "a/b" may use only letters, digits, '.', '_' and '-'`},
		{"secret name dot-dot", func(m *Manifest) { m.Secrets[0].Name = ".." }, "secrets[0].name", `secret name cannot be ".."`},
		{"secret name duplicate", func(m *Manifest) { m.Secrets[2].Name = "disk-key" }, "secrets[2].name", `duplicate secret name "disk-key" (also secrets[1])`},
		{"secret type missing", func(m *Manifest) { m.Secrets[0].Type = "" }, "secrets[0].type", "type is required; want one of symmetric, keypair, user, x509"},
		{"secret type unknown", func(m *Manifest) { m.Secrets[0].Type = "password" }, "secrets[0].type", `unknown secret type "password"`},
		{"symmetric bits", func(m *Manifest) { m.Secrets[1].Bits = 512 }, "secrets[1].bits", "a symmetric key is 128, 192 or 256 bits (0 means 256), not 512"},
		{"bits on keypair", func(m *Manifest) { m.Secrets[2].Bits = 256 }, "secrets[2].bits", "bits is only for symmetric secrets"},
		{"bits on user", func(m *Manifest) { m.Secrets[0].Bits = 128 }, "secrets[0].bits", "bits is only for symmetric secrets"},
		{"keypair algorithm", func(m *Manifest) { m.Secrets[2].Algorithm = "rsa-1024" }, "secrets[2].algorithm", `unknown algorithm "rsa-1024"; want one of ec-p256, ec-p384, ed25519, rsa-2048, rsa-3072`},
		{"x509 algorithm", func(m *Manifest) { m.Secrets[3].Algorithm = "EC-P256" }, "secrets[3].algorithm", `unknown algorithm "EC-P256"`},
		{"algorithm on symmetric", func(m *Manifest) { m.Secrets[1].Algorithm = "ec-p256" }, "secrets[1].algorithm", "algorithm is only for keypair and x509 secrets"},
		{"x509 without names", func(m *Manifest) { m.Secrets[3].Subject, m.Secrets[3].DNSNames = "", nil }, "secrets[3]", "no subject and no DNS names"},
		{"x509 subject too long", func(m *Manifest) { m.Secrets[3].Subject = strings.Repeat("a", 65) }, "secrets[3].subject", "subject is 65 bytes; a common name is at most 64"},
		{"x509 first DNS name too long for the common name", func(m *Manifest) {
			m.Secrets[3].Subject, m.Secrets[3].DNSNames = "", []string{strings.Repeat("a", 61) + ".org"}
		}, "secrets[3].subject", "no subject, so the first DNS name would be the common name, but it is 65 bytes"},
		{"x509 upper-case DNS name", func(m *Manifest) { m.Secrets[3].DNSNames[0] = "Web.example.org" }, "secrets[3].dnsNames[0]", `upper case is not allowed: write "web.example.org"`},
		{"x509 wildcard on a TLD", func(m *Manifest) { m.Secrets[3].DNSNames[1] = "*.com" }, "secrets[3].dnsNames[1]", "a wildcard needs at least two labels after it"},
		{"x509 bad DNS name", func(m *Manifest) { m.Secrets[3].DNSNames[1] = "web..example.org" }, "secrets[3].dnsNames[1]", `"web..example.org" is not a DNS name`},
		{"subject on symmetric", func(m *Manifest) { m.Secrets[1].Subject = "x" }, "secrets[1].subject", "subject is only for x509 secrets"},
		{"dnsNames on user", func(m *Manifest) { m.Secrets[0].DNSNames = []string{"x"} }, "secrets[0].dnsNames", "dnsNames is only for x509 secrets"},
		{"grant missing", func(m *Manifest) { m.Secrets[0].GrantedTo = nil }, "secrets[0].grantedTo", "grant the secret to at least one workload"},
		{"grant unknown", func(m *Manifest) { m.Secrets[1].GrantedTo[1] = "nope" }, "secrets[1].grantedTo[1]", `no workload named "nope"`},
		{"grant empty name", func(m *Manifest) { m.Secrets[1].GrantedTo[1] = "" }, "secrets[1].grantedTo[1]", `no workload named ""`},
		{"grant duplicate", func(m *Manifest) { m.Secrets[1].GrantedTo[1] = "ledger-vm" }, "secrets[1].grantedTo[1]", `"ledger-vm" is granted twice`},
	}
	seen := make(map[string]bool)
	for _, tt := range tests {
		if seen[tt.name] {
			t.Fatalf("duplicate case %q", tt.name)
		}
		seen[tt.name] = true
		t.Run(tt.name, func(t *testing.T) {
			m := goodManifest(t)
			tt.mutate(m)
			fes := fieldErrors(t, m.Validate())
			if len(fes) != 1 {
				t.Fatalf("got %d problems, want 1:\n%v", len(fes), errors.Join(asErrors(fes)...))
			}
			if fes[0].Path != tt.path || !strings.Contains(fes[0].Msg, tt.msg) {
				t.Errorf("got  %s\nwant %s: …%s…", fes[0], tt.path, tt.msg)
			}
		})
	}
}

// TestValidateX509NamesAgreeWithCA checks that Validate accepts exactly the
// x509 secret names that the CA accepts when it issues the certificate: a
// valid manifest must never block a release.
func TestValidateX509NamesAgreeWithCA(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	ca, err := identity.NewCA("example.org", now)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		subject string
		dns     []string
		valid   bool
	}{
		{"subject and DNS names", "web tls", []string{"web.example.org", "*.web.example.org"}, true},
		{"subject only", "web tls", nil, true},
		{"DNS names without subject", "", []string{"web.example.org"}, true},
		{"64-byte subject", strings.Repeat("a", 64), nil, true},
		{"neither", "", nil, false},
		{"65-byte subject", strings.Repeat("a", 65), nil, false},
		{"65-byte first DNS name without subject", "", []string{strings.Repeat("a", 61) + ".org"}, false},
		{"non-printable subject", "a\tb", nil, false},
		{"upper-case DNS name", "web tls", []string{"Web.example.org"}, false},
		{"wildcard on a TLD", "web tls", []string{"*.com"}, false},
		{"empty DNS label", "web tls", []string{"web..example.org"}, false},
		{"trailing dot", "web tls", []string{"web.example.org."}, false},
	} {
		m := goodManifest(t)
		m.Secrets[3].Subject, m.Secrets[3].DNSNames = tc.subject, tc.dns
		verr := m.Validate()
		_, ierr := ca.IssueSecretCert(tc.subject, tc.dns, key, now, 0)
		if (verr == nil) != tc.valid || (ierr == nil) != tc.valid {
			t.Errorf("%s: Validate = %v; IssueSecretCert = %v; want valid=%v from both", tc.name, verr, ierr, tc.valid)
		}
	}
}

func asErrors(fes []*FieldError) []error {
	out := make([]error, len(fes))
	for i, fe := range fes {
		out[i] = fe
	}
	return out
}

func TestValidateReportsAll(t *testing.T) {
	m := goodManifest(t)
	m.Version = 3
	m.TrustDomain = "https://example.org"
	m.Owners[0].PublicKey = rsaPEM
	m.Workloads[0].Reference.Measurements[0] = n(1, 32)
	m.Workloads[1].Model = "vm"
	m.Workloads[2].Reference.HostData = nil
	m.Secrets[1].Bits = 64
	m.Secrets[3].GrantedTo = []string{"web", "nope"}

	var got []string
	for _, fe := range fieldErrors(t, m.Validate()) {
		got = append(got, fe.Path)
	}
	want := []string{
		"version",
		"trustDomain",
		"owners[0].publicKey",
		"workloads[0].reference.measurements[0]",
		"workloads[1].model",
		"workloads[2].reference.hostData",
		"secrets[1].bits",
		"secrets[3].grantedTo[1]",
	}
	if !slices.Equal(got, want) {
		t.Errorf("paths = %q\nwant    %q", got, want)
	}
}

func TestFieldErrorString(t *testing.T) {
	m := goodManifest(t)
	m.Workloads[1] = Workload{Name: "signer", Model: ConfidentialVM, TEE: attest.SEVSNP,
		Reference: Reference{Measurements: []attest.Hex{n(1, 32)}}}
	err := m.Validate()
	want := "workloads[1].reference.measurements[0]: SNP measurement must be 48 bytes, got 32"
	if err == nil || err.Error() != want {
		t.Errorf("Validate() = %v, want %q", err, want)
	}
	if got := (&FieldError{Msg: "x"}).Error(); got != "x" {
		t.Errorf("Error() without path = %q", got)
	}
}

func TestModelTEEs(t *testing.T) {
	for m, want := range map[Model][]attest.TEE{
		ConfidentialVM:        {attest.SEVSNP, attest.TDX},
		Enclave:               {attest.SGX},
		ConfidentialContainer: {attest.SEVSNP, attest.TDX, attest.SGX},
		"bogus":               nil,
	} {
		if got := m.TEEs(); !slices.Equal(got, want) {
			t.Errorf("%s.TEEs() = %v, want %v", m, got, want)
		}
	}
	if got := Models(); !slices.Equal(got, []Model{ConfidentialVM, Enclave, ConfidentialContainer}) {
		t.Errorf("Models() = %v", got)
	}
}

func TestOwnerKey(t *testing.T) {
	m := goodManifest(t)
	k, err := m.Owners[0].Key()
	if _, ok := k.(*ecdsa.PublicKey); err != nil || !ok {
		t.Errorf("alice: %T, %v", k, err)
	}
	k, err = m.Owners[1].Key()
	if _, ok := k.(ed25519.PublicKey); err != nil || !ok {
		t.Errorf("bob: %T, %v", k, err)
	}
	_, err = Owner{Name: "eve", PublicKey: rsaPEM}.Key()
	if err == nil || err.Error() != `owner "eve": RSA keys are not accepted as owner keys; use an ECDSA P-256 or P-384 or an Ed25519 key` {
		t.Errorf("RSA: %v", err)
	}
}

// A workload may name policies; they survive a YAML round trip in order.
func TestWorkloadPolicies(t *testing.T) {
	m := goodManifest(t)
	m.Workloads[0].Policies = []string{"tb-snp.rego", "azure-sevsnpvm", "kv_release-1"}
	if err := m.Validate(); err != nil {
		t.Fatal(err)
	}
	y := strings.Replace(string(readTestdata(t, "good.yaml")), "    reference:", "    policies: [tb-snp.rego, azure-sevsnpvm]\n    reference:", 1)
	p, err := Parse([]byte(y))
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Workloads[0].Policies; !slices.Equal(got, []string{"tb-snp.rego", "azure-sevsnpvm"}) {
		t.Errorf("policies %v", got)
	}
	if p.Workloads[1].Policies != nil {
		t.Errorf("a workload without policies reads %v", p.Workloads[1].Policies)
	}
}
