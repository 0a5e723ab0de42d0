package attest

import (
	"context"
	"fmt"
	"slices"
)

// Registry maps each evidence format to its one Verifier. The formats
// trustbound ships are listed in one file, attest/formats.
type Registry struct {
	verifiers map[Format]Verifier
}

// NewRegistry returns a registry of the given verifiers. Two verifiers for
// one format are a programming error.
func NewRegistry(vs ...Verifier) (*Registry, error) {
	r := &Registry{verifiers: make(map[Format]Verifier, len(vs))}
	for _, v := range vs {
		if _, dup := r.verifiers[v.Format()]; dup {
			return nil, fmt.Errorf("attest: two verifiers for format %q", v.Format())
		}
		r.verifiers[v.Format()] = v
	}
	return r, nil
}

// Formats lists the registered formats in order.
func (r *Registry) Formats() []Format {
	fs := make([]Format, 0, len(r.verifiers))
	for f := range r.verifiers {
		fs = append(fs, f)
	}
	slices.Sort(fs)
	return fs
}

// Verify checks evidence with the verifier of its format. It fails closed:
// an unknown format, a missing time or a verifier that returns no claims is
// an error.
func (r *Registry) Verify(ctx context.Context, ev *Evidence, opts Options) (*Claims, error) {
	if ev == nil {
		return nil, fmt.Errorf("%w: no evidence", ErrMalformed)
	}
	v, ok := r.verifiers[ev.Format]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownFormat, ev.Format)
	}
	if opts.Now.IsZero() {
		return nil, fmt.Errorf("attest: verification time not set")
	}
	c, err := v.Verify(ctx, ev, opts)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", ev.Format, err)
	}
	if c == nil {
		return nil, fmt.Errorf("%s: verifier returned no claims", ev.Format)
	}
	c.Format = ev.Format
	return c, nil
}
