package coordinator

import (
	"strings"
	"testing"
)

func TestKBSInitDataAlgorithm(t *testing.T) {
	for _, c := range []struct {
		doc, alg, err string
	}{
		{"algorithm = \"sha384\"\nversion = \"0.1.0\"\n[data]\n", "sha384", ""},
		{"# initdata\r\nversion = '0.1.0'\r\n\"algorithm\" = 'sha256' # the hash\r\n\r\n[data]\r\n", "sha256", ""},
		{"version = \"0.1.0\"\nalgorithm=\"sha512\"", "sha512", ""},
		// A multi-line string in the root table is skipped, not read.
		{"note = '''\nalgorithm = \"sha256\"\n'''\nalgorithm = \"sha384\"\n", "sha384", ""},
		// Keys of tables after the root do not count.
		{"version = \"0.1.0\"\n[data]\nalgorithm = \"sha256\"\n", "", "no top-level algorithm"},
		{"algorithm = \"sha384\"\nalgorithm = \"sha256\"\n", "", "twice"},
		{"algorithm = \"sha\\u0033\"\n", "", "not a single-line TOML string"},
		{"algorithm = sha384\n", "", "not a single-line TOML string"},
		{"algorithm = \"sha384\" trailing\n", "", "not a single-line TOML string"},
		{"= \"sha384\"\n", "", "not a TOML key/value line"},
		{"", "", "no top-level algorithm"},
	} {
		alg, err := kbsInitDataAlgorithm(c.doc)
		if c.err == "" {
			if err != nil || alg != c.alg {
				t.Errorf("%q: %q, %v; want %q", c.doc, alg, err, c.alg)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), c.err) {
			t.Errorf("%q: %q, %v; want an error containing %q", c.doc, alg, err, c.err)
		}
	}
}
