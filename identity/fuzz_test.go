package identity

import (
	"strings"
	"testing"
)

// FuzzParseSPIFFEID checks that whatever ParseSPIFFEID accepts is canonical:
// it prints back to the input and rebuilds through SPIFFEID.
func FuzzParseSPIFFEID(f *testing.F) {
	for _, s := range []string{
		"spiffe://example.org/enclave/signer",
		"spiffe://example.org/a/b/c",
		"spiffe://example.org",
		"spiffe://example.org/a/../b",
		"spiffe://example.org/%61",
		"spiffe://user@example.org:1/a?b#c",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, err := ParseSPIFFEID(s)
		if err != nil {
			return
		}
		if id.String() != s {
			t.Fatalf("ParseSPIFFEID(%q).String() = %q", s, id.String())
		}
		segs := strings.Split(strings.TrimPrefix(id.Path, "/"), "/")
		if len(segs) == 2 {
			again, err := SPIFFEID(id.Host, segs[0], segs[1])
			if err != nil || again.String() != s {
				t.Fatalf("SPIFFEID(%q, %q, %q) = %v, %v; want %s", id.Host, segs[0], segs[1], again, err, s)
			}
		}
	})
}

// FuzzLoadCA checks that LoadCA never panics and that whatever it accepts
// marshals back to a CA it accepts again.
func FuzzLoadCA(f *testing.F) {
	ca := newCA(f)
	certPEM, keyPEM, err := ca.MarshalPEM()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(certPEM, keyPEM)
	f.Add(certPEM, certPEM)
	f.Add([]byte("-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n"), keyPEM)
	f.Fuzz(func(t *testing.T, certPEM, keyPEM []byte) {
		loaded, err := LoadCA(certPEM, keyPEM)
		if err != nil {
			return
		}
		c, k, err := loaded.MarshalPEM()
		if err != nil {
			t.Fatalf("MarshalPEM of a loaded CA: %v", err)
		}
		if _, err := LoadCA(c, k); err != nil {
			t.Fatalf("LoadCA(MarshalPEM()) of a loaded CA: %v", err)
		}
	})
}
