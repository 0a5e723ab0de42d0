package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"os"

	"github.com/trustbound/trustbound/manifest"
)

func cmdKeygen(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("keygen", stderr)
	out := fs.String("out", "owner.key", "file for the private key (mode 0600); the public key goes to stdout")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(*out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if err := pem.Encode(f, &pem.Block{Type: "PRIVATE KEY", Bytes: der}); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	pub, err := publicKeyPEM(&k.PublicKey)
	if err != nil {
		return err
	}
	_, err = io.WriteString(stdout, pub)
	return err
}

func publicKeyPEM(pub any) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", err
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})), nil
}

func cmdManifest(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usageErr("manifest validate FILE | manifest set --owner NAME --key KEY FILE | manifest get")
	}
	switch args[0] {
	case "validate":
		fs := newFlags("manifest validate", stderr)
		if err := parseFlags(fs, args[1:]); err != nil {
			return err
		}
		if fs.NArg() != 1 {
			return usageErr("manifest validate FILE")
		}
		m, raw, err := manifest.Load(fs.Arg(0))
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s: valid manifest v%d, %d owners, %d workloads, %d secrets, digest %s\n",
			fs.Arg(0), m.Version, len(m.Owners), len(m.Workloads), len(m.Secrets), manifest.Digest(raw))
		if m.AllowSimulated {
			fmt.Fprintln(stdout, "note: allowSimulated is set: simulated TEEs will be accepted (never in production)")
		}
		return nil
	case "set":
		fs := newFlags("manifest set", stderr)
		var cf coordinatorFlags
		cf.register(fs)
		owner := fs.String("owner", "", "owner name (as in the manifest in force)")
		keyFile := fs.String("key", "owner.key", "owner's private key (PEM)")
		if err := parseFlags(fs, args[1:]); err != nil {
			return err
		}
		if fs.NArg() != 1 || *owner == "" {
			return usageErr("manifest set --owner NAME --key KEY FILE")
		}
		_, raw, err := manifest.Load(fs.Arg(0))
		if err != nil {
			return err
		}
		key, err := readOwnerKey(*keyFile)
		if err != nil {
			return err
		}
		c, err := cf.client()
		if err != nil {
			return err
		}
		res, err := c.SetManifest(ctx, *owner, key, raw)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "manifest set: digest %s, revision %d\n", res.Digest, res.Revision)
		return nil
	case "get":
		fs := newFlags("manifest get", stderr)
		var cf coordinatorFlags
		cf.register(fs)
		if err := parseFlags(fs, args[1:]); err != nil {
			return err
		}
		c, err := cf.client()
		if err != nil {
			return err
		}
		res, err := c.Manifest(ctx)
		if err != nil {
			return err
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(res)
	}
	return usageErr("unknown manifest subcommand %q (validate, set, get)", args[0])
}

func cmdSecret(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "set" {
		return usageErr("secret set --owner NAME --key KEY NAME < value")
	}
	fs := newFlags("secret set", stderr)
	var cf coordinatorFlags
	cf.register(fs)
	owner := fs.String("owner", "", "owner name")
	keyFile := fs.String("key", "owner.key", "owner's private key (PEM)")
	from := fs.String("from", "-", "file holding the value, or - for standard input")
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	if fs.NArg() != 1 || *owner == "" {
		return usageErr("secret set --owner NAME --key KEY NAME < value")
	}
	var value []byte
	var err error
	if *from == "-" {
		value, err = io.ReadAll(io.LimitReader(os.Stdin, 512<<10))
	} else {
		value, err = os.ReadFile(*from)
	}
	if err != nil {
		return err
	}
	key, err := readOwnerKey(*keyFile)
	if err != nil {
		return err
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	res, err := c.SetSecret(ctx, *owner, key, fs.Arg(0), value)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "secret %s set: version %d (%d bytes; the value is never shown)\n", res.Name, res.Version, len(value))
	return nil
}
