// Command gen-intel generates the simulated Intel SGX PCK chain that
// attest/simtee embeds: a root CA, a PCK Processor CA and a PCK leaf
// certificate with the SGX extension, each with its ECDSA P-256 key. It was
// run once; run it again only to replace the chain:
//
//	go run ./attest/simtee/internal/gen-intel -out attest/simtee/intel
//
// With -collateral it instead adds, under the existing root and PCK CA, the
// simulated collateral signers: a TCB signing certificate and key, and the
// root CA's and PCK Processor CA's CRLs (empty, valid as long as the chain):
//
//	go run ./attest/simtee/internal/gen-intel -collateral -out attest/simtee/intel
//
// With -reissue-pck it re-issues only the PCK certificate under the existing
// PCK CA, with the same key and extension (it was run so to name the leaf
// "… SGX PCK Certificate", as Intel's QVL requires of PCK certificates):
//
//	go run ./attest/simtee/internal/gen-intel -reissue-pck -out attest/simtee/intel
//
// The keys it writes are public by design. Keep the TCB values below in
// step with the sgxSim* values in attest/simtee/sgx.go (a test checks).
package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"flag"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"time"
)

// The platform the simulated PCK certificate describes.
var (
	cpuSVN  = [16]byte{0x0e, 0x0e, 0x02, 0x04, 0x01, 0x80, 0x0d}
	pceSVN  = 13
	pceID   = []byte{0x00, 0x00}
	fmspc   = []byte{0x00, 0xc0, 0xff, 0xee, 0x00, 0x00}
	sgxType = asn1.Enumerated(0) // Standard
)

var (
	notBefore = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	notAfter  = time.Date(2049, 12, 31, 23, 59, 59, 0, time.UTC)
	org       = []string{"trustbound (SIMULATED, not Intel; private keys are public)"}
)

var oidSGX = asn1.ObjectIdentifier{1, 2, 840, 113741, 1, 13, 1}

func sub(base asn1.ObjectIdentifier, arcs ...int) asn1.ObjectIdentifier {
	return append(append(asn1.ObjectIdentifier{}, base...), arcs...)
}

type entry struct {
	ID    asn1.ObjectIdentifier
	Value any
}

// sgxExtension encodes the SGX extension as Intel's PCK certificate
// profile lays it out: a SEQUENCE of (OID, value) SEQUENCEs.
func sgxExtension() ([]byte, error) {
	ppid := sha256.Sum256([]byte("trustbound SIMULATED PPID"))
	tcbOID := sub(oidSGX, 2)
	var tcb []entry
	for i, svn := range cpuSVN {
		tcb = append(tcb, entry{sub(tcbOID, i+1), int(svn)})
	}
	tcb = append(tcb, entry{sub(tcbOID, 17), pceSVN}, entry{sub(tcbOID, 18), cpuSVN[:]})
	return asn1.Marshal([]entry{
		{sub(oidSGX, 1), ppid[:16]},
		{sub(oidSGX, 2), tcb},
		{sub(oidSGX, 3), pceID},
		{sub(oidSGX, 4), fmspc},
		{sub(oidSGX, 5), sgxType},
	})
}

func serial() (*big.Int, error) {
	return rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
}

type issued struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func issue(tmpl *x509.Certificate, parent *issued) (*issued, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	return issueKey(tmpl, parent, key)
}

// issueKey issues tmpl for key, by parent (self-signed if nil).
func issueKey(tmpl *x509.Certificate, parent *issued, key *ecdsa.PrivateKey) (*issued, error) {
	var err error
	if tmpl.SerialNumber, err = serial(); err != nil {
		return nil, err
	}
	tmpl.NotBefore, tmpl.NotAfter = notBefore, notAfter
	tmpl.SignatureAlgorithm = x509.ECDSAWithSHA256
	signer, parentCert := key, tmpl
	if parent != nil {
		signer, parentCert = parent.key, parent.cert
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parentCert, &key.PublicKey, signer)
	if err != nil {
		return nil, err
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &issued{c, key}, nil
}

func write(dir, name string, c *issued) error {
	kd, err := x509.MarshalPKCS8PrivateKey(c.key)
	if err != nil {
		return err
	}
	cp := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.cert.Raw})
	kp := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kd})
	if err := os.WriteFile(filepath.Join(dir, name+".pem"), cp, 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, name+".key.pem"), kp, 0o644)
}

func run(dir string) error {
	root, err := issue(&x509.Certificate{
		Subject:               pkix.Name{CommonName: "trustbound SIMULATED SGX Root CA", Organization: org},
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLen:            1,
	}, nil)
	if err != nil {
		return err
	}
	ca, err := issue(&x509.Certificate{
		Subject:               pkix.Name{CommonName: "trustbound SIMULATED PCK Processor CA", Organization: org},
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLen:            0,
		MaxPathLenZero:        true,
	}, root)
	if err != nil {
		return err
	}
	leafKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	leaf, err := issuePCK(ca, leafKey)
	if err != nil {
		return err
	}
	for name, c := range map[string]*issued{"sgx_root_ca": root, "sgx_pck_processor_ca": ca, "sgx_pck": leaf} {
		if err := write(dir, name, c); err != nil {
			return err
		}
	}
	return nil
}

// issuePCK issues the simulated PCK certificate for key under ca.
func issuePCK(ca *issued, key *ecdsa.PrivateKey) (*issued, error) {
	ext, err := sgxExtension()
	if err != nil {
		return nil, err
	}
	return issueKey(&x509.Certificate{
		Subject:               pkix.Name{CommonName: "trustbound SIMULATED SGX PCK Certificate", Organization: org},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment,
		BasicConstraintsValid: true,
		ExtraExtensions:       []pkix.Extension{{Id: oidSGX, Value: ext}},
	}, ca, key)
}

// reissuePCK re-issues the PCK certificate in dir under its PCK CA, with
// its key.
func reissuePCK(dir string) error {
	ca, err := load(dir, "sgx_pck_processor_ca")
	if err != nil {
		return err
	}
	old, err := load(dir, "sgx_pck")
	if err != nil {
		return err
	}
	leaf, err := issuePCK(ca, old.key)
	if err != nil {
		return err
	}
	return write(dir, "sgx_pck", leaf)
}

// load reads a certificate and its key written by write.
func load(dir, name string) (*issued, error) {
	cb, err := os.ReadFile(filepath.Join(dir, name+".pem"))
	if err != nil {
		return nil, err
	}
	kb, err := os.ReadFile(filepath.Join(dir, name+".key.pem"))
	if err != nil {
		return nil, err
	}
	cblk, _ := pem.Decode(cb)
	kblk, _ := pem.Decode(kb)
	if cblk == nil || kblk == nil {
		return nil, fmt.Errorf("%s: no PEM", name)
	}
	c, err := x509.ParseCertificate(cblk.Bytes)
	if err != nil {
		return nil, err
	}
	k, err := x509.ParsePKCS8PrivateKey(kblk.Bytes)
	if err != nil {
		return nil, err
	}
	ek, ok := k.(*ecdsa.PrivateKey)
	if !ok || !ek.PublicKey.Equal(c.PublicKey) {
		return nil, fmt.Errorf("%s: key does not match the certificate", name)
	}
	return &issued{c, ek}, nil
}

// collateral issues the TCB signing certificate and both CRLs under the
// chain already in dir.
func collateral(dir string) error {
	root, err := load(dir, "sgx_root_ca")
	if err != nil {
		return err
	}
	ca, err := load(dir, "sgx_pck_processor_ca")
	if err != nil {
		return err
	}
	signer, err := issue(&x509.Certificate{
		Subject:  pkix.Name{CommonName: "trustbound SIMULATED SGX TCB Signing", Organization: org},
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment,
	}, root)
	if err != nil {
		return err
	}
	if err := write(dir, "sgx_tcb_signing", signer); err != nil {
		return err
	}
	for name, c := range map[string]*issued{"sgx_root_ca": root, "sgx_pck_processor_ca": ca} {
		der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
			Number: big.NewInt(1), ThisUpdate: notBefore, NextUpdate: notAfter,
		}, c.cert, c.key)
		if err != nil {
			return err
		}
		p := pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der})
		if err := os.WriteFile(filepath.Join(dir, name+".crl.pem"), p, 0o644); err != nil {
			return err
		}
	}
	return nil
}

func main() {
	out := flag.String("out", "attest/simtee/intel", "directory to write the PEM files to")
	coll := flag.Bool("collateral", false, "add the collateral signers (TCB signing certificate, CRLs) under the chain in -out")
	reissue := flag.Bool("reissue-pck", false, "re-issue only the PCK certificate, with its key, under the PCK CA in -out")
	flag.Parse()
	do := run
	if *coll {
		do = collateral
	}
	if *reissue {
		do = reissuePCK
	}
	if err := do(*out); err != nil {
		fmt.Fprintln(os.Stderr, "gen-intel:", err)
		os.Exit(1)
	}
}
