// Package initdata writes Confidential Containers init-data documents and
// computes the value a TEE binds for them (SNP HOST_DATA, TDX MRCONFIGID),
// exactly as the KBS checks it.
//
// The format is the Initdata specification of Confidential Containers
// (trustee kbs/docs/initdata.md): a TOML document with a top-level
// version ("0.1.0") and algorithm (sha256, sha384 or sha512), and a [data]
// table of named files, among them "policy.rego" (the Kata agent policy),
// "aa.toml" and "cdh.toml". The digest is the named hash of the
// document's bytes exactly as written; the TEE carries it zero-padded or
// truncated to its field: 32 bytes of SNP HOST_DATA, 48 bytes of TDX
// MRCONFIGID (trustee's regularize_data, kata's adjust_digest). Upstream
// Kata takes the document from the pod annotation
// io.katacontainers.config.hypervisor.cc_init_data as base64 of the
// gzip-compressed TOML (Annotation).
//
// coordinator/kbs_initdata.go checks init-data with Digest and
// Regularize.
package initdata

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/trustbound/trustbound/attest"
)

// AnnotationKey is the pod annotation from which upstream Kata
// (kata-qemu-snp, kata-qemu-tdx) reads the init-data document.
const AnnotationKey = "io.katacontainers.config.hypervisor.cc_init_data"

// Version is the only init-data format version the specification defines.
const Version = "0.1.0"

// PolicyFile is the [data] entry that carries the Kata agent policy.
const PolicyFile = "policy.rego"

// Digest returns the algorithm hash of doc. algorithm is sha256, sha384
// or sha512, as the document's "algorithm" names it.
func Digest(algorithm string, doc []byte) ([]byte, error) {
	switch algorithm {
	case "sha256":
		h := sha256.Sum256(doc)
		return h[:], nil
	case "sha384":
		h := sha512.Sum384(doc)
		return h[:], nil
	case "sha512":
		h := sha512.Sum512(doc)
		return h[:], nil
	}
	return nil, fmt.Errorf("initdata: algorithm %q is none of sha256, sha384, sha512", algorithm)
}

// Regularize zero-pads or truncates digest to n bytes, as the TEE field
// of n bytes carries it.
func Regularize(digest []byte, n int) []byte {
	out := make([]byte, n)
	copy(out, digest)
	return out
}

// AlgorithmFor is the hash whose digest fills the TEE's field exactly:
// sha256 for SNP HOST_DATA (32 bytes), sha384 for TDX MRCONFIGID (48).
func AlgorithmFor(tee attest.TEE) (string, error) {
	switch tee {
	case attest.SEVSNP:
		return "sha256", nil
	case attest.TDX:
		return "sha384", nil
	}
	return "", fmt.Errorf("initdata: %s has no init-data field (SNP HOST_DATA, TDX MRCONFIGID)", tee)
}

// Bound returns what tee reports for init-data doc hashed with algorithm:
// the digest regularized to 32 bytes (SNP HOST_DATA) or 48 bytes (TDX
// MRCONFIGID).
func Bound(tee attest.TEE, algorithm string, doc []byte) (attest.Hex, error) {
	d, err := Digest(algorithm, doc)
	if err != nil {
		return nil, err
	}
	switch tee {
	case attest.SEVSNP:
		return Regularize(d, 32), nil
	case attest.TDX:
		return Regularize(d, 48), nil
	}
	return nil, fmt.Errorf("initdata: %s has no init-data field (SNP HOST_DATA, TDX MRCONFIGID)", tee)
}

// Document writes an init-data TOML document: version, algorithm, and a
// [data] table with one multi-line literal string per file, in name
// order. A file's text must not contain three single quotes in a row (TOML cannot write them in a
// literal string) nor carriage returns, and names are limited to
// [A-Za-z0-9._-], so that the document reads back as written.
func Document(algorithm string, files map[string]string) ([]byte, error) {
	if _, err := Digest(algorithm, nil); err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, errors.New("initdata: no files")
	}
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	slices.Sort(names)
	var b bytes.Buffer
	fmt.Fprintf(&b, "version = %q\nalgorithm = %q\n\n[data]\n", Version, algorithm)
	for _, n := range names {
		if n == "" || strings.Trim(n, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") != "" {
			return nil, fmt.Errorf("initdata: file name %q: want [A-Za-z0-9._-]", n)
		}
		text := files[n]
		if strings.Contains(text, "'''") || strings.ContainsRune(text, '\r') {
			return nil, fmt.Errorf("initdata: file %s contains ''' or a carriage return, which a TOML literal string cannot hold", n)
		}
		if !strings.HasSuffix(text, "\n") {
			text += "\n"
		}
		// The newline right after the opening ''' is not part of the string.
		fmt.Fprintf(&b, "%q = '''\n%s'''\n", n, text)
	}
	return b.Bytes(), nil
}

// Annotation encodes doc as the value of AnnotationKey: base64 (standard,
// padded) of the gzip-compressed document, with an empty gzip header so
// that the same document always gives the same value.
func Annotation(doc []byte) (string, error) {
	var b bytes.Buffer
	zw, err := gzip.NewWriterLevel(&b, gzip.BestCompression)
	if err != nil {
		return "", err
	}
	if _, err := zw.Write(doc); err != nil {
		return "", fmt.Errorf("initdata: gzip: %w", err)
	}
	if err := zw.Close(); err != nil {
		return "", fmt.Errorf("initdata: gzip: %w", err)
	}
	return base64.StdEncoding.EncodeToString(b.Bytes()), nil
}

// MaxDocument bounds the document FromAnnotation decompresses.
const MaxDocument = 1 << 20

// FromAnnotation decodes an AnnotationKey value back to the document: the
// inverse of Annotation, bounded by MaxDocument.
func FromAnnotation(v string) ([]byte, error) {
	z, err := base64.StdEncoding.DecodeString(v)
	if err != nil {
		return nil, fmt.Errorf("initdata: annotation %s: base64: %w", AnnotationKey, err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(z))
	if err != nil {
		return nil, fmt.Errorf("initdata: annotation %s: gzip: %w", AnnotationKey, err)
	}
	var out bytes.Buffer
	n, err := out.ReadFrom(io.LimitReader(zr, MaxDocument+1))
	if err != nil {
		return nil, fmt.Errorf("initdata: annotation %s: gzip: %w", AnnotationKey, err)
	}
	if n > MaxDocument {
		return nil, fmt.Errorf("initdata: annotation %s: the document exceeds %d bytes", AnnotationKey, MaxDocument)
	}
	return out.Bytes(), nil
}
