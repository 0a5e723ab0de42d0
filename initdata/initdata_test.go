package initdata_test

import (
	"bytes"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/trustbound/trustbound/attest"
	"github.com/trustbound/trustbound/initdata"
)

// TestDocument: the document is written as the Initdata specification
// shows it, files in name order, and refuses what TOML literal strings
// cannot hold.
func TestDocument(t *testing.T) {
	doc, err := initdata.Document("sha384", map[string]string{"policy.rego": "package agent_policy\n", "aa.toml": "[token_configs]"})
	if err != nil {
		t.Fatal(err)
	}
	want := "version = \"0.1.0\"\nalgorithm = \"sha384\"\n\n[data]\n" +
		"\"aa.toml\" = '''\n[token_configs]\n'''\n" +
		"\"policy.rego\" = '''\npackage agent_policy\n'''\n"
	if string(doc) != want {
		t.Errorf("document:\n%s\nwant:\n%s", doc, want)
	}
	for name, files := range map[string]map[string]string{
		"no files":    {},
		"quotes":      {"policy.rego": "x := '''"},
		"carriage":    {"policy.rego": "a\r\nb"},
		"bad name":    {"policy rego": "x"},
		"quoted name": {`a"b`: "x"},
		"empty name":  {"": "x"},
	} {
		if _, err := initdata.Document("sha256", files); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := initdata.Document("md5", map[string]string{"policy.rego": "x"}); err == nil {
		t.Error("algorithm md5 accepted")
	}
}

// TestBound: the digest is the named hash of the document's bytes,
// zero-padded or truncated to the TEE field, as the KBS regularizes it.
func TestBound(t *testing.T) {
	doc := []byte("version = \"0.1.0\"\nalgorithm = \"sha256\"\n\n[data]\n")
	s256 := sha256.Sum256(doc)
	s384 := sha512.Sum384(doc)
	s512 := sha512.Sum512(doc)
	for _, tc := range []struct {
		tee  attest.TEE
		alg  string
		want []byte
	}{
		{attest.SEVSNP, "sha256", s256[:]},
		{attest.SEVSNP, "sha384", s384[:32]},
		{attest.SEVSNP, "sha512", s512[:32]},
		{attest.TDX, "sha384", s384[:]},
		{attest.TDX, "sha256", append(bytes.Clone(s256[:]), make([]byte, 16)...)},
		{attest.TDX, "sha512", s512[:48]},
	} {
		got, err := initdata.Bound(tc.tee, tc.alg, doc)
		if err != nil || !bytes.Equal(got, tc.want) {
			t.Errorf("%s %s: %x, %v; want %x", tc.tee, tc.alg, got, err, tc.want)
		}
	}
	if _, err := initdata.Bound(attest.SGX, "sha256", doc); err == nil {
		t.Error("sgx has no init-data field, but Bound answered")
	}
	for tee, want := range map[attest.TEE]string{attest.SEVSNP: "sha256", attest.TDX: "sha384"} {
		if got, err := initdata.AlgorithmFor(tee); err != nil || got != want {
			t.Errorf("AlgorithmFor(%s) = %q, %v; want %s", tee, got, err, want)
		}
	}
	// A known vector: SHA-256 of "abc".
	d, err := initdata.Digest("sha256", []byte("abc"))
	if err != nil || hex.EncodeToString(d) != "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" {
		t.Errorf("Digest(sha256, abc) = %x, %v", d, err)
	}
	if r := initdata.Regularize([]byte{1, 2, 3}, 2); !bytes.Equal(r, []byte{1, 2}) {
		t.Errorf("Regularize truncates to %x", r)
	}
}

// TestAnnotation: the annotation is base64 of gzip of the document, the
// same bytes for the same document, and decodes back.
func TestAnnotation(t *testing.T) {
	doc, err := initdata.Document("sha256", map[string]string{"policy.rego": strings.Repeat("default X := false\n", 50)})
	if err != nil {
		t.Fatal(err)
	}
	a, err := initdata.Annotation(doc)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := initdata.Annotation(doc)
	if a != b {
		t.Error("the annotation of one document differs between calls")
	}
	z, err := base64.StdEncoding.DecodeString(a)
	if err != nil || len(z) < 2 || z[0] != 0x1f || z[1] != 0x8b {
		t.Fatalf("the annotation is not base64 of gzip (%v)", err)
	}
	back, err := initdata.FromAnnotation(a)
	if err != nil || !bytes.Equal(back, doc) {
		t.Fatalf("FromAnnotation: %v", err)
	}
	for name, v := range map[string]string{
		"not base64": "%%%",
		"not gzip":   base64.StdEncoding.EncodeToString(doc),
		"truncated":  a[:len(a)/2],
	} {
		if _, err := initdata.FromAnnotation(v); err == nil {
			t.Errorf("%s: decoded", name)
		}
	}
	// Decompression is bounded.
	big, err := initdata.Annotation(make([]byte, initdata.MaxDocument+1))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := initdata.FromAnnotation(big); err == nil || !strings.Contains(err.Error(), "exceeds") {
		t.Errorf("a document over the limit: %v", err)
	}
}

// FuzzFromAnnotation: any annotation value decodes to a bounded document
// or an error, and a document that decodes encodes back to itself.
func FuzzFromAnnotation(f *testing.F) {
	doc, _ := initdata.Document("sha256", map[string]string{"policy.rego": "package agent_policy\n"})
	a, _ := initdata.Annotation(doc)
	f.Add(a)
	f.Add("")
	f.Add("H4sIAAAAAAAC/w==")
	f.Add(base64.StdEncoding.EncodeToString([]byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff}))
	f.Fuzz(func(t *testing.T, v string) {
		d, err := initdata.FromAnnotation(v)
		if err != nil {
			return
		}
		if len(d) > initdata.MaxDocument {
			t.Fatalf("%d bytes decoded, limit %d", len(d), initdata.MaxDocument)
		}
		again, err := initdata.Annotation(d)
		if err != nil {
			t.Fatal(err)
		}
		if back, err := initdata.FromAnnotation(again); err != nil || !bytes.Equal(back, d) {
			t.Fatalf("round trip: %v", err)
		}
	})
}
