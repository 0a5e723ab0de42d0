// Command gen-amd generates the simulated AMD SEV-SNP chain embedded in
// attest/simtee/amd: fresh ARK and ASK (RSA-4096) and VCEK (ECDSA P-384)
// keys, their certificates, and the KDS-style cert_chain bundle. It was run
// once; run it again only to replace the simulated chain, which invalidates
// all simulated SNP evidence minted before:
//
//	go run ./attest/simtee/internal/gen-amd -out attest/simtee/amd
package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/trustbound/trustbound/attest/simtee/internal/amdca"
)

func main() {
	out := flag.String("out", "attest/simtee/amd", "directory to write the PEM files to")
	flag.Parse()
	if err := run(*out); err != nil {
		fmt.Fprintln(os.Stderr, "gen-amd:", err)
		os.Exit(1)
	}
}

func run(dir string) error {
	arkKey, err := rsa.GenerateKey(rand.Reader, 4096)
	if err != nil {
		return err
	}
	askKey, err := rsa.GenerateKey(rand.Reader, 4096)
	if err != nil {
		return err
	}
	vcekKey, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		return err
	}

	arkTmpl := amdca.ARK()
	arkDER, err := x509.CreateCertificate(rand.Reader, arkTmpl, arkTmpl, &arkKey.PublicKey, arkKey)
	if err != nil {
		return fmt.Errorf("ARK: %w", err)
	}
	ark, err := x509.ParseCertificate(arkDER)
	if err != nil {
		return err
	}
	askDER, err := x509.CreateCertificate(rand.Reader, amdca.ASK(), ark, &askKey.PublicKey, arkKey)
	if err != nil {
		return fmt.Errorf("ASK: %w", err)
	}
	ask, err := x509.ParseCertificate(askDER)
	if err != nil {
		return err
	}
	vcekTmpl, err := amdca.VCEK(amdca.DefaultTCB, amdca.ChipID)
	if err != nil {
		return err
	}
	vcekDER, err := x509.CreateCertificate(rand.Reader, vcekTmpl, ask, &vcekKey.PublicKey, askKey)
	if err != nil {
		return fmt.Errorf("VCEK: %w", err)
	}

	keys := map[string]crypto.Signer{"ark-key.pem": arkKey, "ask-key.pem": askKey, "vcek-key.pem": vcekKey}
	files := map[string][]*pem.Block{
		"ark.pem":  {{Type: "CERTIFICATE", Bytes: arkDER}},
		"ask.pem":  {{Type: "CERTIFICATE", Bytes: askDER}},
		"vcek.pem": {{Type: "CERTIFICATE", Bytes: vcekDER}},
		// The KDS cert_chain format: ASK then ARK.
		"cert_chain.pem": {{Type: "CERTIFICATE", Bytes: askDER}, {Type: "CERTIFICATE", Bytes: arkDER}},
	}
	for name, k := range keys {
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			return err
		}
		files[name] = []*pem.Block{{Type: "PRIVATE KEY", Bytes: der}}
	}
	for name, blocks := range files {
		var b []byte
		for _, blk := range blocks {
			b = append(b, pem.EncodeToMemory(blk)...)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}
