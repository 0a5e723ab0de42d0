package main

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/trustbound/trustbound/agent"
	"github.com/trustbound/trustbound/api"
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

// ownerFlags are the flags of every owner-signed command.
type ownerFlags struct {
	coordinatorFlags
	name, keyFile string
}

func (o *ownerFlags) register(fs *flag.FlagSet) {
	o.coordinatorFlags.register(fs)
	fs.StringVar(&o.name, "owner", "", "owner name, as in the manifest (required)")
	fs.StringVar(&o.keyFile, "key", "owner.key", "the owner's private key (PEM)")
}

// connect returns a client and the owner that signs its requests.
func (o *ownerFlags) connect() (*agent.Client, agent.Owner, error) {
	if o.name == "" {
		return nil, agent.Owner{}, usageErr("--owner is required")
	}
	key, err := readOwnerKey(o.keyFile)
	if err != nil {
		return nil, agent.Owner{}, err
	}
	c, err := o.client()
	if err != nil {
		return nil, agent.Owner{}, err
	}
	return c, agent.Owner{Name: o.name, Key: key}, nil
}

func cmdManifest(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usageErr("manifest validate FILE | manifest set --owner NAME --key KEY [--bootstrap FILE] FILE | manifest get --owner NAME --key KEY")
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
		var of ownerFlags
		of.register(fs)
		bootstrap := fs.String("bootstrap", "", "for the first manifest only: the coordinator's bootstrap.token file")
		if err := parseFlags(fs, args[1:]); err != nil {
			return err
		}
		if fs.NArg() != 1 {
			return usageErr("manifest set --owner NAME --key KEY [--bootstrap FILE] FILE")
		}
		_, raw, err := manifest.Load(fs.Arg(0))
		if err != nil {
			return err
		}
		var token []byte
		if *bootstrap != "" {
			if token, err = readBounded(*bootstrap, maxTokenFile); err != nil {
				return err
			}
		}
		c, o, err := of.connect()
		if err != nil {
			return err
		}
		res, err := c.SetManifest(ctx, o, raw, token)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "manifest set: digest %s, revision %d\n", res.Digest, res.Revision)
		return nil
	case "get":
		fs := newFlags("manifest get", stderr)
		var of ownerFlags
		of.register(fs)
		if err := parseFlags(fs, args[1:]); err != nil {
			return err
		}
		c, o, err := of.connect()
		if err != nil {
			return err
		}
		res, err := c.Manifest(ctx, o)
		if err != nil {
			return err
		}
		return printJSON(stdout, res)
	}
	return usageErr("unknown manifest subcommand %q (validate, set, get)", args[0])
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// maxSecretValue bounds a user secret read from a file or standard input.
const maxSecretValue = 512 << 10

func cmdSecret(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "set" {
		return usageErr("secret set --owner NAME --key KEY [--from FILE] NAME")
	}
	fs := newFlags("secret set", stderr)
	var of ownerFlags
	of.register(fs)
	from := fs.String("from", "-", "file holding the value, or - for standard input")
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageErr("secret set --owner NAME --key KEY [--from FILE] NAME")
	}
	r := io.Reader(os.Stdin)
	if *from != "-" {
		f, err := os.Open(*from)
		if err != nil {
			return err
		}
		defer f.Close()
		r = f
	}
	value, err := io.ReadAll(io.LimitReader(r, maxSecretValue+1))
	if err != nil {
		return err
	}
	if len(value) > maxSecretValue {
		return fmt.Errorf("the value is larger than %d bytes", maxSecretValue)
	}
	c, o, err := of.connect()
	if err != nil {
		return err
	}
	res, err := c.SetSecret(ctx, o, fs.Arg(0), value)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "secret %s set: version %d (%d bytes; the value is never shown)\n", res.Name, res.Version, len(value))
	return nil
}

func cmdAudit(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("audit", stderr)
	var of ownerFlags
	of.register(fs)
	limit := fs.Int("page", api.DefaultAuditLimit, fmt.Sprintf("records per request (1 to %d)", api.MaxAuditLimit))
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *limit < 1 || *limit > api.MaxAuditLimit {
		return usageErr("--page must be from 1 to %d", api.MaxAuditLimit)
	}
	c, o, err := of.connect()
	if err != nil {
		return err
	}
	// The trail is read page by page and written as it comes: one JSON
	// array, indented as printJSON writes it, never held whole.
	bw := bufio.NewWriter(stdout)
	n := 0
	err = c.AuditEachLimit(ctx, o, *limit, func(r api.AuditRecord) error {
		b, err := json.MarshalIndent(r, "  ", "  ")
		if err != nil {
			return err
		}
		sep := ",\n  "
		if n == 0 {
			sep = "[\n  "
		}
		n++
		_, err = fmt.Fprintf(bw, "%s%s", sep, b)
		return err
	})
	if err != nil {
		_ = bw.Flush()
		return err
	}
	if n == 0 {
		_, err = io.WriteString(bw, "[]\n")
	} else {
		_, err = io.WriteString(bw, "\n]\n")
	}
	if err != nil {
		return err
	}
	return bw.Flush()
}
