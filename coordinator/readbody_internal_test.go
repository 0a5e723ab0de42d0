package coordinator

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

// readAllSized returns the whole body whatever Content-Length claims, and
// passes a reader's error on.
func TestReadAllSized(t *testing.T) {
	body := bytes.Repeat([]byte("0123456789abcdef"), 6000) // 96000 bytes, above maxPresize
	for _, tc := range []struct {
		name string
		size int
		cl   int64
	}{
		{"exact", 1000, 1000},
		{"unknown length", 1000, -1},
		{"no body declared", 10, 0},
		{"declared too short", 3000, 10},
		{"declared too long", 10, 5000},
		{"longer than the presize", len(body), int64(len(body))},
		{"empty", 0, 0},
	} {
		in := body[:tc.size]
		// OneByteReader makes every Read short, so the growth path runs too.
		for _, r := range []io.Reader{bytes.NewReader(in), iotest.OneByteReader(bytes.NewReader(in))} {
			got, err := readAllSized(r, tc.cl)
			if err != nil || !bytes.Equal(got, in) {
				t.Errorf("%s: got %d bytes (%v), want %d", tc.name, len(got), err, len(in))
			}
		}
	}
	boom := errors.New("boom")
	got, err := readAllSized(io.MultiReader(strings.NewReader("abc"), iotest.ErrReader(boom)), 3)
	if !errors.Is(err, boom) || string(got) != "abc" {
		t.Errorf("got %q, %v; want \"abc\" and the reader's error", got, err)
	}
}
