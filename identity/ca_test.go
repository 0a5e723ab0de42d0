package identity

import (
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

const td = "example.org"

// now is the fixed time of every test; nothing reads the clock.
var now = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func newCA(t testing.TB) *CA {
	t.Helper()
	ca, err := NewCA(td, now)
	if err != nil {
		t.Fatalf("NewCA: %v", err)
	}
	return ca
}

func rootPool(cas ...*CA) *x509.CertPool {
	p := x509.NewCertPool()
	for _, ca := range cas {
		p.AddCert(ca.Root())
	}
	return p
}

func p256(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func parse(t testing.TB, der []byte) *x509.Certificate {
	t.Helper()
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("ParseCertificate: %v", err)
	}
	return c
}

func workloadReq(pub crypto.PublicKey) WorkloadRequest {
	return WorkloadRequest{PublicKey: pub, TrustDomain: td, Model: "confidential-vm", Workload: "ledger-vm", NotBefore: now}
}

func TestNewCARoot(t *testing.T) {
	ca := newCA(t)
	root := ca.Root()
	if !root.IsCA || !root.BasicConstraintsValid {
		t.Errorf("IsCA=%v BasicConstraintsValid=%v, want both true", root.IsCA, root.BasicConstraintsValid)
	}
	if root.MaxPathLen != 1 {
		t.Errorf("MaxPathLen = %d, want 1", root.MaxPathLen)
	}
	if want := x509.KeyUsageCertSign | x509.KeyUsageCRLSign; root.KeyUsage != want {
		t.Errorf("KeyUsage = %v, want %v", root.KeyUsage, want)
	}
	if got, want := root.Subject.CommonName, "trustbound root CA example.org"; got != want {
		t.Errorf("CN = %q, want %q", got, want)
	}
	if len(root.URIs) != 1 || root.URIs[0].String() != "spiffe://example.org" {
		t.Errorf("URIs = %v, want [spiffe://example.org]", root.URIs)
	}
	if !root.NotBefore.Equal(now.Add(-time.Minute)) || !root.NotAfter.Equal(now.AddDate(10, 0, 0)) {
		t.Errorf("validity %s .. %s, want %s .. %s", root.NotBefore, root.NotAfter, now.Add(-time.Minute), now.AddDate(10, 0, 0))
	}
	pub, ok := root.PublicKey.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		t.Errorf("root key %T, want ECDSA P-256", root.PublicKey)
	}
	if err := root.CheckSignatureFrom(root); err != nil {
		t.Errorf("root is not self-signed: %v", err)
	}
	if _, err := root.Verify(x509.VerifyOptions{Roots: rootPool(ca), CurrentTime: now}); err != nil {
		t.Errorf("root does not verify against itself: %v", err)
	}
	if ca.TrustDomain() != td {
		t.Errorf("TrustDomain() = %q", ca.TrustDomain())
	}
	block, rest := pem.Decode(ca.RootPEM())
	if block == nil || block.Type != "CERTIFICATE" || len(rest) != 0 || string(block.Bytes) != string(root.Raw) {
		t.Errorf("RootPEM is not one CERTIFICATE block holding the root")
	}
}

func TestNewCARejects(t *testing.T) {
	for _, tc := range []struct {
		td   string
		now  time.Time
		want error
	}{
		{"Example.org", now, ErrInvalidID},
		{"example.org:443", now, ErrInvalidID},
		{"", now, ErrInvalidID},
		{td, time.Time{}, ErrInvalidRequest},
	} {
		if _, err := NewCA(tc.td, tc.now); !errors.Is(err, tc.want) {
			t.Errorf("NewCA(%q, %v) = %v, want %v", tc.td, tc.now, err, tc.want)
		}
	}
}

func TestLoadCARoundTrip(t *testing.T) {
	ca := newCA(t)
	certPEM, keyPEM, err := ca.MarshalPEM()
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := pem.Decode(keyPEM); b == nil || b.Type != "PRIVATE KEY" {
		t.Fatalf("key PEM is not a PKCS#8 PRIVATE KEY block")
	}
	loaded, err := LoadCA(certPEM, keyPEM)
	if err != nil {
		t.Fatalf("LoadCA: %v", err)
	}
	if !loaded.Root().Equal(ca.Root()) || loaded.TrustDomain() != td {
		t.Fatalf("loaded CA differs: root equal %v, trust domain %q", loaded.Root().Equal(ca.Root()), loaded.TrustDomain())
	}
	// The loaded key signs certificates that chain to the original root.
	der, err := loaded.IssueWorkload(workloadReq(p256(t).Public()))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := parse(t, der).Verify(x509.VerifyOptions{Roots: rootPool(ca), CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Fatalf("cert from loaded CA does not verify against original root: %v", err)
	}
}

func TestLoadCARejects(t *testing.T) {
	ca, other := newCA(t), newCA(t)
	certPEM, keyPEM, err := ca.MarshalPEM()
	if err != nil {
		t.Fatal(err)
	}
	_, otherKeyPEM, err := other.MarshalPEM()
	if err != nil {
		t.Fatal(err)
	}
	leafKey := p256(t)
	leafDER, err := ca.IssueWorkload(workloadReq(leafKey.Public()))
	if err != nil {
		t.Fatal(err)
	}
	leafPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leafDER})
	leafKeyDER, err := x509.MarshalPKCS8PrivateKey(leafKey)
	if err != nil {
		t.Fatal(err)
	}
	leafKeyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: leafKeyDER})
	ecKeyDER, err := x509.MarshalECPrivateKey(p256(t))
	if err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name          string
		cert, key     []byte
		wantInMessage string
	}{
		{"mismatched key", certPEM, otherKeyPEM, "does not match"},
		{"leaf is not a CA", leafPEM, leafKeyPEM, "not a CA"},
		{"trailing data", append(slices.Clip(certPEM), certPEM...), keyPEM, "trailing data"},
		{"key as certificate", keyPEM, keyPEM, "want \"CERTIFICATE\""},
		{"SEC1 key", certPEM, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: ecKeyDER}), "want \"PRIVATE KEY\""},
		{"no PEM", []byte("not pem"), keyPEM, "no PEM block"},
		{"empty key", certPEM, nil, "no PEM block"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := LoadCA(tc.cert, tc.key)
			if !errors.Is(err, ErrInvalidCA) || !strings.Contains(err.Error(), tc.wantInMessage) {
				t.Fatalf("LoadCA = %v, want ErrInvalidCA mentioning %q", err, tc.wantInMessage)
			}
		})
	}
}

func TestIssueWorkload(t *testing.T) {
	ca := newCA(t)
	key := p256(t)
	der, err := ca.IssueWorkload(workloadReq(key.Public()))
	if err != nil {
		t.Fatal(err)
	}
	c := parse(t, der)
	const wantID = "spiffe://example.org/confidential-vm/ledger-vm"
	if len(c.URIs) != 1 || c.URIs[0].String() != wantID {
		t.Errorf("URIs = %v, want exactly [%s]", c.URIs, wantID)
	}
	if len(c.DNSNames)+len(c.IPAddresses)+len(c.EmailAddresses) != 0 {
		t.Errorf("unexpected SANs: %v %v %v", c.DNSNames, c.IPAddresses, c.EmailAddresses)
	}
	if c.IsCA || !c.BasicConstraintsValid {
		t.Errorf("IsCA=%v BasicConstraintsValid=%v, want false/true", c.IsCA, c.BasicConstraintsValid)
	}
	if c.KeyUsage != x509.KeyUsageDigitalSignature {
		t.Errorf("KeyUsage = %v, want DigitalSignature only", c.KeyUsage)
	}
	if want := []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}; !slices.Equal(c.ExtKeyUsage, want) {
		t.Errorf("ExtKeyUsage = %v, want %v", c.ExtKeyUsage, want)
	}
	if !slices.Equal(c.Subject.Organization, []string{"trustbound"}) || !slices.Equal(c.Subject.OrganizationalUnit, []string{"attested TEE"}) {
		t.Errorf("Subject = %v, want O=trustbound OU=attested TEE", c.Subject)
	}
	if !c.NotBefore.Equal(now.Add(-time.Minute)) || !c.NotAfter.Equal(now.Add(time.Hour)) {
		t.Errorf("validity %s .. %s, want %s .. %s", c.NotBefore, c.NotAfter, now.Add(-time.Minute), now.Add(time.Hour))
	}
	if c.SerialNumber.Sign() <= 0 || c.SerialNumber.BitLen() > 128 {
		t.Errorf("serial %v is not a positive 128-bit number", c.SerialNumber)
	}
	if !key.PublicKey.Equal(c.PublicKey) {
		t.Errorf("certificate is not for the requested key")
	}
	if err := c.CheckSignatureFrom(ca.Root()); err != nil {
		t.Errorf("not signed by the root: %v", err)
	}

	for _, usage := range []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageAny} {
		if _, err := c.Verify(x509.VerifyOptions{Roots: rootPool(ca), CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
			t.Errorf("Verify(usage %v) at issuance: %v", usage, err)
		}
	}
	_, err = c.Verify(x509.VerifyOptions{Roots: rootPool(ca), CurrentTime: c.NotAfter.Add(time.Second)})
	var invalid x509.CertificateInvalidError
	if !errors.As(err, &invalid) || invalid.Reason != x509.Expired {
		t.Errorf("Verify after expiry = %v, want Expired", err)
	}

	id, err := SPIFFEIDOf(c)
	if err != nil || id.String() != wantID {
		t.Errorf("SPIFFEIDOf = %v, %v; want %s", id, err, wantID)
	}
	id, err = VerifySVID([]*x509.Certificate{c}, VerifyOptions{Roots: rootPool(ca), Now: now, Usage: x509.ExtKeyUsageClientAuth})
	if err != nil || id.String() != wantID {
		t.Errorf("VerifySVID = %v, %v; want %s", id, err, wantID)
	}
	if _, err := VerifySVID([]*x509.Certificate{c}, VerifyOptions{Roots: rootPool(ca), Now: now.Add(2 * time.Hour), Usage: x509.ExtKeyUsageClientAuth}); !errors.Is(err, ErrNotSVID) {
		t.Errorf("VerifySVID after expiry = %v, want ErrNotSVID", err)
	}

	// Serials are random: a second certificate for the same key differs.
	der2, err := ca.IssueWorkload(workloadReq(key.Public()))
	if err != nil {
		t.Fatal(err)
	}
	if parse(t, der2).SerialNumber.Cmp(c.SerialNumber) == 0 {
		t.Errorf("two certificates share serial %v", c.SerialNumber)
	}
}

func TestIssueWorkloadSimulatedAndDNS(t *testing.T) {
	ca := newCA(t)
	req := workloadReq(p256(t).Public())
	req.Simulated = true
	req.DNSNames = []string{"ledger.example.org"}
	der, err := ca.IssueWorkload(req)
	if err != nil {
		t.Fatal(err)
	}
	c := parse(t, der)
	if !slices.Equal(c.Subject.OrganizationalUnit, []string{"simulated TEE"}) {
		t.Errorf("OU = %v, want [simulated TEE]", c.Subject.OrganizationalUnit)
	}
	if !slices.Equal(c.DNSNames, req.DNSNames) || len(c.URIs) != 1 {
		t.Errorf("SANs DNS=%v URIs=%v", c.DNSNames, c.URIs)
	}
}

func TestIssueWorkloadTTL(t *testing.T) {
	ca := newCA(t)
	pub := p256(t).Public()
	for _, tc := range []struct {
		ttl     time.Duration
		wantErr error
	}{
		{0, nil},
		{time.Minute, nil},
		{24 * time.Hour, nil},
		{24*time.Hour + time.Nanosecond, ErrInvalidRequest},
		{48 * time.Hour, ErrInvalidRequest},
		{-time.Hour, ErrInvalidRequest},
	} {
		req := workloadReq(pub)
		req.TTL = tc.ttl
		der, err := ca.IssueWorkload(req)
		if !errors.Is(err, tc.wantErr) || (err == nil) != (tc.wantErr == nil) {
			t.Errorf("TTL %s: err = %v, want %v", tc.ttl, err, tc.wantErr)
			continue
		}
		if err != nil {
			continue
		}
		want := tc.ttl
		if want == 0 {
			want = DefaultWorkloadTTL
		}
		if got := parse(t, der).NotAfter; !got.Equal(now.Add(want)) {
			t.Errorf("TTL %s: NotAfter = %s, want %s", tc.ttl, got, now.Add(want))
		}
	}
}

func TestIssueWorkloadRefusesRequests(t *testing.T) {
	ca := newCA(t)
	pub := p256(t).Public()
	for _, tc := range []struct {
		name   string
		modify func(*WorkloadRequest)
		want   error
	}{
		{"uppercase workload", func(r *WorkloadRequest) { r.Workload = "Ledger" }, ErrInvalidID},
		{"slash in workload", func(r *WorkloadRequest) { r.Workload = "a/b" }, ErrInvalidID},
		{"empty model", func(r *WorkloadRequest) { r.Model = "" }, ErrInvalidID},
		{"dot-dot workload", func(r *WorkloadRequest) { r.Workload = ".." }, ErrInvalidID},
		{"other trust domain", func(r *WorkloadRequest) { r.TrustDomain = "other.org" }, ErrInvalidRequest},
		{"empty trust domain", func(r *WorkloadRequest) { r.TrustDomain = "" }, ErrInvalidRequest},
		{"no time", func(r *WorkloadRequest) { r.NotBefore = time.Time{} }, ErrInvalidRequest},
		{"wildcard DNS", func(r *WorkloadRequest) { r.DNSNames = []string{"*.example.org"} }, ErrInvalidRequest},
		{"uppercase DNS", func(r *WorkloadRequest) { r.DNSNames = []string{"Ledger.example.org"} }, ErrInvalidRequest},
		{"no key", func(r *WorkloadRequest) { r.PublicKey = nil }, ErrUnsupportedKey},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := workloadReq(pub)
			tc.modify(&req)
			if _, err := ca.IssueWorkload(req); !errors.Is(err, tc.want) {
				t.Fatalf("IssueWorkload = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestIssueWorkloadKeyTypes(t *testing.T) {
	ca := newCA(t)
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p521, err := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	edPub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rsa2048, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	x25519, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	big1024 := new(big.Int).Lsh(big.NewInt(1), 1023)
	big1024.Add(big1024, big.NewInt(1))

	for _, tc := range []struct {
		name      string
		pub       crypto.PublicKey
		wantUsage x509.KeyUsage // zero: refused with ErrUnsupportedKey
	}{
		{"ECDSA P-256", p256(t).Public(), x509.KeyUsageDigitalSignature},
		{"ECDSA P-384", p384.Public(), x509.KeyUsageDigitalSignature},
		{"Ed25519", edPub, x509.KeyUsageDigitalSignature},
		{"RSA 2048", rsa2048.Public(), x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment},
		{"ECDSA P-521", p521.Public(), 0},
		{"RSA 1024", &rsa.PublicKey{N: big1024, E: 65537}, 0},
		{"RSA even exponent", &rsa.PublicKey{N: rsa2048.N, E: 65536}, 0},
		{"X25519", x25519.PublicKey(), 0},
		{"ECDSA point off the curve", &ecdsa.PublicKey{Curve: elliptic.P256(), X: big.NewInt(1), Y: big.NewInt(1)}, 0},
		{"short Ed25519", ed25519.PublicKey(make([]byte, 31)), 0},
		{"nil ECDSA", (*ecdsa.PublicKey)(nil), 0},
		{"nil RSA", (*rsa.PublicKey)(nil), 0},
		{"ECDSA by value", *p384.Public().(*ecdsa.PublicKey), 0},
		{"private key", p256(t), 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			der, err := ca.IssueWorkload(workloadReq(tc.pub))
			if tc.wantUsage == 0 {
				if !errors.Is(err, ErrUnsupportedKey) {
					t.Fatalf("IssueWorkload = %v, want ErrUnsupportedKey", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			c := parse(t, der)
			if c.KeyUsage != tc.wantUsage {
				t.Errorf("KeyUsage = %v, want %v", c.KeyUsage, tc.wantUsage)
			}
			if _, err := VerifySVID([]*x509.Certificate{c}, VerifyOptions{Roots: rootPool(ca), Now: now, Usage: x509.ExtKeyUsageServerAuth}); err != nil {
				t.Errorf("VerifySVID: %v", err)
			}
		})
	}
}

func TestIssueOutsideRootValidity(t *testing.T) {
	ca := newCA(t)
	pub := p256(t).Public()
	end := ca.Root().NotAfter
	for _, tc := range []struct {
		name string
		at   time.Time
	}{
		{"before the root", now.Add(-2 * time.Minute)},
		{"after the root", end.Add(time.Second)},
		{"outliving the root", end.Add(-30 * time.Minute)},
	} {
		req := workloadReq(pub)
		req.NotBefore = tc.at
		if _, err := ca.IssueWorkload(req); !errors.Is(err, ErrCAValidity) {
			t.Errorf("%s: IssueWorkload = %v, want ErrCAValidity", tc.name, err)
		}
	}
	req := workloadReq(pub)
	req.NotBefore = end.Add(-time.Hour)
	if _, err := ca.IssueWorkload(req); err != nil {
		t.Errorf("issuing a certificate that ends with the root: %v", err)
	}
}

func TestIssueServer(t *testing.T) {
	ca := newCA(t)
	key := p256(t)
	der, err := ca.IssueServer(key.Public(), []string{"coordinator.example.org"}, []net.IP{net.IPv4(127, 0, 0, 1)}, now, 0)
	if err != nil {
		t.Fatal(err)
	}
	c := parse(t, der)
	if !slices.Equal(c.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}) || c.IsCA || c.KeyUsage != x509.KeyUsageDigitalSignature {
		t.Errorf("ExtKeyUsage=%v IsCA=%v KeyUsage=%v", c.ExtKeyUsage, c.IsCA, c.KeyUsage)
	}
	if !slices.Equal(c.Subject.OrganizationalUnit, []string{"coordinator"}) || len(c.URIs) != 0 {
		t.Errorf("OU=%v URIs=%v, want [coordinator] and none", c.Subject.OrganizationalUnit, c.URIs)
	}
	if !c.NotAfter.Equal(now.Add(DefaultServerTTL)) {
		t.Errorf("NotAfter = %s, want %s", c.NotAfter, now.Add(DefaultServerTTL))
	}
	for _, name := range []string{"coordinator.example.org", "127.0.0.1"} {
		if _, err := c.Verify(x509.VerifyOptions{Roots: rootPool(ca), CurrentTime: now, DNSName: name}); err != nil {
			t.Errorf("Verify(%s): %v", name, err)
		}
	}
	if _, err := c.Verify(x509.VerifyOptions{Roots: rootPool(ca), CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err == nil {
		t.Errorf("server certificate verified as a client certificate")
	}
	if _, err := SPIFFEIDOf(c); !errors.Is(err, ErrNotSVID) {
		t.Errorf("SPIFFEIDOf(server cert) = %v, want ErrNotSVID", err)
	}

	for _, tc := range []struct {
		name string
		dns  []string
		ips  []net.IP
		ttl  time.Duration
		want error
	}{
		{"no names", nil, nil, 0, ErrInvalidRequest},
		{"bad IP", nil, []net.IP{{1, 2, 3}}, 0, ErrInvalidRequest},
		{"trailing dot", []string{"example.org."}, nil, 0, ErrInvalidRequest},
		{"TTL too long", []string{"example.org"}, nil, MaxServerTTL + time.Hour, ErrInvalidRequest},
	} {
		if _, err := ca.IssueServer(key.Public(), tc.dns, tc.ips, now, tc.ttl); !errors.Is(err, tc.want) {
			t.Errorf("%s: IssueServer = %v, want %v", tc.name, err, tc.want)
		}
	}
}

func TestIssueSecretCert(t *testing.T) {
	ca := newCA(t)
	key := p256(t)
	der, err := ca.IssueSecretCert("web tls", []string{"web.example.org", "*.web.example.org"}, key, now, 0)
	if err != nil {
		t.Fatal(err)
	}
	c := parse(t, der)
	if c.Subject.CommonName != "web tls" || !slices.Equal(c.Subject.OrganizationalUnit, []string{"manifest secret"}) {
		t.Errorf("Subject = %v", c.Subject)
	}
	if want := []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}; !slices.Equal(c.ExtKeyUsage, want) {
		t.Errorf("ExtKeyUsage = %v, want %v", c.ExtKeyUsage, want)
	}
	if !c.NotAfter.Equal(now.Add(90 * 24 * time.Hour)) {
		t.Errorf("NotAfter = %s, want 90 days after %s", c.NotAfter, now)
	}
	if _, err := c.Verify(x509.VerifyOptions{Roots: rootPool(ca), CurrentTime: now, DNSName: "api.web.example.org"}); err != nil {
		t.Errorf("Verify via wildcard: %v", err)
	}
	if _, err := VerifySVID([]*x509.Certificate{c}, VerifyOptions{Roots: rootPool(ca), Now: now, Usage: x509.ExtKeyUsageClientAuth}); !errors.Is(err, ErrNotSVID) {
		t.Errorf("VerifySVID(secret cert) = %v, want ErrNotSVID", err)
	}

	for _, tc := range []struct {
		name    string
		subject string
		dns     []string
		key     crypto.Signer
		ttl     time.Duration
		want    error
	}{
		{"no subject and no DNS names", "", nil, key, 0, ErrInvalidRequest},
		{"control character", "a\nb", nil, key, 0, ErrInvalidRequest},
		{"long subject", strings.Repeat("a", 65), nil, key, 0, ErrInvalidRequest},
		{"bare wildcard", "tls", []string{"*.org"}, key, 0, ErrInvalidRequest},
		{"wildcard on a TLD", "tls", []string{"*.com"}, key, 0, ErrInvalidRequest},
		{"upper-case DNS name", "tls", []string{"Web.example.org"}, key, 0, ErrInvalidRequest},
		{"first DNS name too long to be the common name", "", []string{strings.Repeat("a", 61) + ".org"}, key, 0, ErrInvalidRequest},
		{"TTL too long", "tls", nil, key, MaxSecretTTL + time.Hour, ErrInvalidRequest},
		{"no key", "tls", nil, nil, 0, ErrUnsupportedKey},
	} {
		if _, err := ca.IssueSecretCert(tc.subject, tc.dns, tc.key, now, tc.ttl); !errors.Is(err, tc.want) {
			t.Errorf("%s: IssueSecretCert = %v, want %v", tc.name, err, tc.want)
		}
	}
}

func TestIssueSecretCertWithoutSubject(t *testing.T) {
	ca := newCA(t)
	der, err := ca.IssueSecretCert("", []string{"web.example.org", "*.web.example.org"}, p256(t), now, 0)
	if err != nil {
		t.Fatal(err)
	}
	c := parse(t, der)
	if c.Subject.CommonName != "web.example.org" {
		t.Errorf("CommonName = %q, want the first DNS name", c.Subject.CommonName)
	}
	if !slices.Equal(c.DNSNames, []string{"web.example.org", "*.web.example.org"}) {
		t.Errorf("DNSNames = %v", c.DNSNames)
	}
}

// TestCheckSecretCertNames checks that each refusal names the parameter at
// fault, so that a manifest validator can point at the field, and that a
// 64-byte subject and a 64-byte first DNS name are still accepted.
func TestCheckSecretCertNames(t *testing.T) {
	type fault struct {
		param string
		index int
	}
	for _, tc := range []struct {
		name    string
		subject string
		dns     []string
		want    []fault
	}{
		{"subject only", "web tls", nil, nil},
		{"DNS names only", "", []string{"web.example.org"}, nil},
		{"64-byte subject", strings.Repeat("a", 64), nil, nil},
		{"64-byte first DNS name without subject", "", []string{strings.Repeat("a", 60) + ".org"}, nil},
		{"wildcard", "", []string{"*.web.example.org"}, nil},
		{"nothing", "", nil, []fault{{"", 0}}},
		{"65-byte subject", strings.Repeat("a", 65), nil, []fault{{ParamSubject, 0}}},
		{"65-byte first DNS name without subject", "", []string{strings.Repeat("a", 61) + ".org"}, []fault{{ParamSubject, 0}}},
		{"non-printable subject", "a\tb", nil, []fault{{ParamSubject, 0}}},
		{"invalid UTF-8 subject", "a\xffb", nil, []fault{{ParamSubject, 0}}},
		{"upper case", "tls", []string{"web.example.org", "API.example.org"}, []fault{{ParamDNSNames, 1}}},
		{"wildcard on a TLD", "tls", []string{"*.com"}, []fault{{ParamDNSNames, 0}}},
		{"wildcard not first", "tls", []string{"a.*.example.org"}, []fault{{ParamDNSNames, 0}}},
		{"trailing dot", "tls", []string{"example.org."}, []fault{{ParamDNSNames, 0}}},
		{"several", strings.Repeat("a", 65), []string{"*.com", "ok.example.org", "A.example.org"}, []fault{{ParamSubject, 0}, {ParamDNSNames, 0}, {ParamDNSNames, 2}}},
	} {
		err := CheckSecretCertNames(tc.subject, tc.dns)
		if tc.want == nil {
			if err != nil {
				t.Errorf("%s: %v", tc.name, err)
			}
			continue
		}
		if !errors.Is(err, ErrInvalidRequest) {
			t.Errorf("%s: %v, want ErrInvalidRequest", tc.name, err)
			continue
		}
		var got []fault
		for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
			var ne *SecretNameError
			if !errors.As(e, &ne) || ne.Msg == "" {
				t.Fatalf("%s: %T %v, want a *SecretNameError with a message", tc.name, e, e)
			}
			got = append(got, fault{ne.Param, ne.Index})
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s: faults %v, want %v (%v)", tc.name, got, tc.want, err)
		}
	}
}

func TestSPIFFEID(t *testing.T) {
	id, err := SPIFFEID(td, "enclave", "signer")
	if err != nil || id.String() != "spiffe://example.org/enclave/signer" {
		t.Fatalf("SPIFFEID = %v, %v", id, err)
	}
	long := strings.Repeat("a", 2048)
	for _, tc := range []struct{ td, model, workload string }{
		{td, "enclave", "Signer"},
		{td, "Enclave", "signer"},
		{td, "enclave", "a/b"},
		{td, "enclave", ""},
		{td, "", "signer"},
		{td, "enclave", ".."},
		{td, "enclave", "."},
		{td, "enclave", "a b"},
		{td, "enclave", "sïgner"},
		{td, "enclave", "a%2fb"},
		{td, "enclave", "a?b"},
		{"Example.org", "enclave", "signer"},
		{"example.org:443", "enclave", "signer"},
		{"user@example.org", "enclave", "signer"},
		{"", "enclave", "signer"},
		{strings.Repeat("a", 256), "enclave", "signer"},
		{td, long, "signer"},
	} {
		if id, err := SPIFFEID(tc.td, tc.model, tc.workload); !errors.Is(err, ErrInvalidID) {
			t.Errorf("SPIFFEID(%q, %q, %q) = %v, %v; want ErrInvalidID", tc.td, tc.model, tc.workload, id, err)
		}
	}
}

func TestParseSPIFFEID(t *testing.T) {
	for _, s := range []string{
		"spiffe://example.org/enclave/signer",
		"spiffe://example.org/a",
		"spiffe://a_b-c.d/x/y/z",
	} {
		id, err := ParseSPIFFEID(s)
		if err != nil || id.String() != s {
			t.Errorf("ParseSPIFFEID(%q) = %v, %v", s, id, err)
		}
	}
	for _, s := range []string{
		"",
		"spiffe://example.org",
		"spiffe://example.org/",
		"spiffe://example.org/a/",
		"spiffe://example.org//a",
		"spiffe://example.org/a/../b",
		"spiffe://example.org/a?x=1",
		"spiffe://example.org/a#f",
		"spiffe://example.org/%61",
		"spiffe://user@example.org/a",
		"spiffe://example.org:8080/a",
		"spiffe:///a",
		"SPIFFE://example.org/a",
		"https://example.org/a",
		"spiffe://example.org/A",
	} {
		if id, err := ParseSPIFFEID(s); !errors.Is(err, ErrInvalidID) {
			t.Errorf("ParseSPIFFEID(%q) = %v, %v; want ErrInvalidID", s, id, err)
		}
	}
}

func TestSPIFFEIDOfRefuses(t *testing.T) {
	ca := newCA(t)
	key := p256(t)
	// A certificate with two URI SANs, self-signed by a test key.
	two := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "two"},
		NotBefore:    now, NotAfter: now.Add(time.Hour),
		URIs: []*url.URL{
			{Scheme: "spiffe", Host: td, Path: "/a/b"},
			{Scheme: "spiffe", Host: td, Path: "/a/c"},
		},
	}
	twoDER, err := x509.CreateCertificate(rand.Reader, two, two, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		cert *x509.Certificate
	}{
		{"nil", nil},
		{"root (trust domain only)", ca.Root()},
		{"two URI SANs", parse(t, twoDER)},
	} {
		if id, err := SPIFFEIDOf(tc.cert); !errors.Is(err, ErrNotSVID) {
			t.Errorf("%s: SPIFFEIDOf = %v, %v; want ErrNotSVID", tc.name, id, err)
		}
	}
}

func TestVerifySVIDOptions(t *testing.T) {
	ca := newCA(t)
	der, err := ca.IssueWorkload(workloadReq(p256(t).Public()))
	if err != nil {
		t.Fatal(err)
	}
	chain := []*x509.Certificate{parse(t, der)}
	for _, tc := range []struct {
		name  string
		chain []*x509.Certificate
		opts  VerifyOptions
	}{
		{"no roots", chain, VerifyOptions{Now: now, Usage: x509.ExtKeyUsageClientAuth}},
		{"no time", chain, VerifyOptions{Roots: rootPool(ca), Usage: x509.ExtKeyUsageClientAuth}},
		{"any usage", chain, VerifyOptions{Roots: rootPool(ca), Now: now, Usage: x509.ExtKeyUsageAny}},
		{"no chain", nil, VerifyOptions{Roots: rootPool(ca), Now: now, Usage: x509.ExtKeyUsageClientAuth}},
		{"other CA", chain, VerifyOptions{Roots: rootPool(newCA(t)), Now: now, Usage: x509.ExtKeyUsageClientAuth}},
		{"before issuance", chain, VerifyOptions{Roots: rootPool(ca), Now: now.Add(-2 * time.Minute), Usage: x509.ExtKeyUsageClientAuth}},
	} {
		if id, err := VerifySVID(tc.chain, tc.opts); err == nil {
			t.Errorf("%s: VerifySVID = %v, want an error", tc.name, id)
		}
	}
	_, err = VerifySVID(chain, VerifyOptions{Roots: rootPool(newCA(t)), Now: now, Usage: x509.ExtKeyUsageClientAuth})
	var unknown x509.UnknownAuthorityError
	if !errors.Is(err, ErrNotSVID) || !errors.As(err, &unknown) {
		t.Errorf("VerifySVID under another root = %v, want ErrNotSVID wrapping UnknownAuthorityError", err)
	}
}

func TestIssueConcurrently(t *testing.T) {
	ca := newCA(t)
	pub := p256(t).Public()
	var wg sync.WaitGroup
	errs := make([]error, 16)
	for i := range errs {
		wg.Go(func() {
			_, errs[i] = ca.IssueWorkload(workloadReq(pub))
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
}
