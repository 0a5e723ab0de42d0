package main

import (
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/trustbound/trustbound/agent"
)

// coordinatorFlags are the flags of every command that talks to a coordinator.
type coordinatorFlags struct {
	url, caFile string
}

func (c *coordinatorFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&c.url, "coordinator", "https://127.0.0.1:8443", "coordinator URL")
	fs.StringVar(&c.caFile, "ca", "", "PEM file of the coordinator's CA (from its data directory); required")
}

func (c *coordinatorFlags) client() (*agent.Client, error) {
	if c.caFile == "" {
		return nil, usageErr("--ca is required: trustbound only talks to a coordinator whose CA it was given")
	}
	caPEM, err := os.ReadFile(c.caFile)
	if err != nil {
		return nil, err
	}
	return clientWithCA(c.url, caPEM)
}

func clientWithCA(url string, caPEM []byte) (*agent.Client, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, errors.New("no certificate in the CA file")
	}
	hc := &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			TLSClientConfig:     &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS13},
			MaxIdleConnsPerHost: 16,
		},
	}
	return agent.NewClient(url, hc), nil
}

// readOwnerKey reads an owner's PEM private key (PKCS#8, EC or Ed25519).
func readOwnerKey(path string) (crypto.Signer, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, fmt.Errorf("%s: no PEM block", path)
	}
	var k any
	switch blk.Type {
	case "PRIVATE KEY":
		k, err = x509.ParsePKCS8PrivateKey(blk.Bytes)
	case "EC PRIVATE KEY":
		k, err = x509.ParseECPrivateKey(blk.Bytes)
	default:
		return nil, fmt.Errorf("%s: PEM type %q is not a private key", path, blk.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("%s: not a signing key", path)
	}
	return s, nil
}
