package keybroker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/trustbound/trustbound/manifest"
	"github.com/trustbound/trustbound/store"
)

// ExportRequest is one release of one secret version wrapped by the
// caller's function (a JWE to a TEE key for the KBS and Key Vault style
// surfaces) rather than sealed to the TEE's HPKE key.
type ExportRequest struct {
	// Record says who, on which evidence, with which token; At, Secret and
	// Version are filled in.
	Record Release
	Secret manifest.Secret
	// Version is the version to release; 0 means the current one (made,
	// or renewed, as Current does).
	Version int
	Now     time.Time
	// Certs issues the certificates of x509 secrets; nil when none is
	// released.
	Certs CertIssuer
	// Wrap protects the value for its recipient. The value is passed to
	// Wrap only; what Wrap returns is all that leaves the broker.
	Wrap func(version int, value []byte) ([]byte, error)
	// Conditions are compare-only ops that must still hold when the
	// release is recorded (see ReleaseRequest.Conditions).
	Conditions []store.Op
}

// ErrNoVersion means a secret has no stored version of the number asked.
var ErrNoVersion = errors.New("keybroker: no such secret version")

// Export wraps one version of a secret with req.Wrap and records the
// release in the audit trail, in one Apply with req.Conditions; it returns
// the version and what Wrap returned. Nothing is recorded when wrapping
// fails, and nothing is returned when recording fails.
func (b *Broker) Export(ctx context.Context, req ExportRequest) (int, []byte, error) {
	if req.Wrap == nil {
		return 0, nil, errors.New("keybroker: export without a wrapping function")
	}
	var v int
	var value []byte
	if req.Version == 0 {
		var err error
		if v, value, err = b.Current(ctx, req.Secret, req.Certs, req.Now); err != nil {
			return 0, nil, err
		}
	} else {
		st, _, err := b.load(ctx, req.Secret)
		if err != nil {
			return 0, nil, err
		}
		if st != nil {
			for _, sv := range st.Versions {
				if sv.Version == req.Version {
					v, value = sv.Version, sv.Value
				}
			}
		}
		if value == nil {
			return 0, nil, fmt.Errorf("%w: %q version %d", ErrNoVersion, req.Secret.Name, req.Version)
		}
	}
	wrapped, err := req.Wrap(v, value)
	if err != nil {
		return 0, nil, fmt.Errorf("keybroker: wrapping %q: %w", req.Secret.Name, err)
	}
	r := req.Record
	r.At, r.Secret, r.Version = req.Now.UTC(), req.Secret.Name, v
	entry, err := json.Marshal(r)
	if err != nil {
		return 0, nil, err
	}
	if err := b.record(ctx, req.Now, r.TokenID, []string{req.Secret.Name}, [][]byte{entry}, req.Conditions); err != nil {
		return 0, nil, err
	}
	return v, wrapped, nil
}
