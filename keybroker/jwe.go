package keybroker

import (
	"context"
	"time"

	"crypto/ecdsa"
	"crypto/rsa"
	"errors"
	"fmt"
	"github.com/trustbound/trustbound/manifest"
	"github.com/trustbound/trustbound/store"

	"github.com/go-jose/go-jose/v4"
)

// ErrJWEKey means a TEE's JWK cannot be wrapped to: not an RSA (2048 bits
// or more) or EC P-256/P-384/P-521 public key.
var ErrJWEKey = errors.New("keybroker: unsupported TEE key for JWE")

// JWEAlgorithm returns the key management algorithm trustbound wraps to
// a TEE key with: RSA-OAEP-256 for RSA keys, ECDH-ES+A256KW for EC keys,
// the algorithms the Confidential Containers guest components decrypt;
// content encryption is always A256GCM.
func JWEAlgorithm(k *jose.JSONWebKey) (jose.KeyAlgorithm, error) {
	if k == nil || !k.IsPublic() {
		return "", fmt.Errorf("%w: not a public key", ErrJWEKey)
	}
	switch pub := k.Key.(type) {
	case *rsa.PublicKey:
		if pub.N.BitLen() < 2048 {
			return "", fmt.Errorf("%w: RSA key of %d bits (at least 2048)", ErrJWEKey, pub.N.BitLen())
		}
		return jose.RSA_OAEP_256, nil
	case *ecdsa.PublicKey:
		return jose.ECDH_ES_A256KW, nil
	}
	return "", fmt.Errorf("%w: %T", ErrJWEKey, k.Key)
}

// WrapJWE encrypts value to the TEE's public key as a JWE in flattened
// JSON serialization (RFC 7516 section 7.2.2), with JWEAlgorithm's key
// management and A256GCM. Pass it as ExportRequest.Wrap.
func WrapJWE(to *jose.JSONWebKey, value []byte) ([]byte, error) {
	alg, err := JWEAlgorithm(to)
	if err != nil {
		return nil, err
	}
	enc, err := jose.NewEncrypter(jose.A256GCM, jose.Recipient{Algorithm: alg, Key: to.Key}, nil)
	if err != nil {
		return nil, fmt.Errorf("keybroker: JWE to the TEE key: %w", err)
	}
	obj, err := enc.Encrypt(value)
	if err != nil {
		return nil, fmt.Errorf("keybroker: JWE: %w", err)
	}
	// One recipient: go-jose writes the flattened serialization.
	return []byte(obj.FullSerialize()), nil
}

// ErrJWEVersion means a KBS resource names a version of a secret that is
// not stored (the same error as ErrNoVersion).
var ErrJWEVersion = ErrNoVersion

// JWERelease is one release of one secret version as a JWE.
type JWERelease struct {
	// Record says who, on which evidence, with which token; At, Secret and
	// Version are filled in.
	Record Release
	Secret manifest.Secret
	// Version is the version to release; 0 means the current one.
	Version int
	To      *jose.JSONWebKey
	Now     time.Time
	// Conditions must still hold when the release is recorded (see
	// ReleaseRequest.Conditions).
	Conditions []store.Op
}

// ReleaseJWE wraps one version of a secret to the TEE's key (WrapJWE) and
// records the release in the audit trail, in one Apply with
// req.Conditions; it returns the version and the JWE. x509 secrets are not
// released this way (their key and certificate are made per workload CA).
func (b *Broker) ReleaseJWE(ctx context.Context, req JWERelease) (int, []byte, error) {
	if req.Secret.Type == manifest.X509 {
		return 0, nil, fmt.Errorf("keybroker: secret %q: x509 secrets are not released as JWE", req.Secret.Name)
	}
	return b.Export(ctx, ExportRequest{
		Record: req.Record, Secret: req.Secret, Version: req.Version, Now: req.Now, Conditions: req.Conditions,
		Wrap: func(_ int, value []byte) ([]byte, error) { return WrapJWE(req.To, value) },
	})
}
