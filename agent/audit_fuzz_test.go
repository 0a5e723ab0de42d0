package agent

import (
	"encoding/json"
	"strings"
	"testing"
)

// FuzzDecodeAuditPage feeds arbitrary answers of GET /v1/audit to the
// page decoder: it never panics, a page it accepts had a records array,
// and a whole trail (an older coordinator's array) has no next cursor.
func FuzzDecodeAuditPage(f *testing.F) {
	rec := `{"at":"2026-11-27T12:00:00Z","workload":"web","secret":"k","version":1,"evidenceDigest":"sha256:00","tokenID":"t","simulated":true}`
	for _, seed := range []string{
		`{"records":[` + rec + `],"next":"00000000000000000001-0000000000000000-0000000000000000"}`,
		`{"records":[]}`, ` [` + rec + `,` + rec + `]`, `[]`,
		`{}`, `null`, `{"records":null}`, `{"records":{}}`, `{"next":"x"}`, `{"records":[1]}`, `[`, `"x"`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		page, whole, err := decodeAuditPage(b)
		if err != nil {
			if page != nil || whole {
				t.Fatalf("refused %q yet returned a page", b)
			}
			return
		}
		if page == nil {
			t.Fatalf("accepted %q without a page", b)
		}
		if whole && page.Next != "" {
			t.Fatalf("a whole trail with a next cursor from %q", b)
		}
		if !whole {
			// encoding/json matches member names case-insensitively.
			var members map[string]json.RawMessage
			if err := json.Unmarshal(b, &members); err != nil {
				t.Fatalf("accepted %q, which is not an object: %v", b, err)
			}
			found := false
			for k, v := range members {
				if strings.EqualFold(k, "records") && len(v) > 0 && v[0] == '[' {
					found = true
				}
			}
			if !found {
				t.Fatalf("accepted %q as a page without a records array", b)
			}
		}
	})
}

func TestDecodeAuditPage(t *testing.T) {
	for _, tc := range []struct {
		body      string
		n         int
		next      string
		whole, ok bool
	}{
		{`{"records":[{"secret":"a"},{"secret":"b"}],"next":"c"}`, 2, "c", false, true},
		{`{"records":[]}`, 0, "", false, true},
		{"\n[{\"secret\":\"a\"}]", 1, "", true, true},
		{`{}`, 0, "", false, false},
		{`null`, 0, "", false, false},
		{`{"records":null}`, 0, "", false, false},
		{`{"next":"c"}`, 0, "", false, false},
		{`{"records":[1]}`, 0, "", false, false},
	} {
		page, whole, err := decodeAuditPage([]byte(tc.body))
		if (err == nil) != tc.ok {
			t.Errorf("%s: error %v, want ok %v", tc.body, err, tc.ok)
			continue
		}
		if tc.ok && (len(page.Records) != tc.n || page.Next != tc.next || whole != tc.whole) {
			t.Errorf("%s: %d records, next %q, whole %v", tc.body, len(page.Records), page.Next, whole)
		}
	}
}
