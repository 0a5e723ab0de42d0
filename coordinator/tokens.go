package coordinator

import (
	"context"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/trustbound/trustbound/store"
	"github.com/trustbound/trustbound/token"
)

// Token keys. The coordinator keeps one token.Keyring, sealed at
// keyTokenKeyring: a current ES256 key (native tokens, /v1/attest) and a
// current RS256 key (the Azure-compatible surface signs RS256, as Azure
// Attestation does), and the keys rotated out that are still published
// because tokens they signed may not have expired. Both issuers share the
// keyring, so either verifies the other's tokens, /certs publishes every
// key, and a rotation changes both.

const (
	keyTokenKeyring = "coordinator/token-keyring"
	// keyTokenKey is the single ES256 key of earlier versions; New moves
	// it into the keyring (it stays the current ES256 key) and deletes it.
	keyTokenKey = "coordinator/token-key"
)

// tokenState is the keyring in force, its issuers and the store revision
// it was read or written at. It is replaced whole on rotation.
type tokenState struct {
	ring     *token.Keyring
	issuers  map[string]*token.Issuer // by algorithm
	revision int64
}

// issuer returns the token issuer signing with alg (token.ES256 for native
// tokens, token.RS256 for the Azure-compatible surface). Both verify any
// token signed by a published key of the keyring. nil for another alg.
func (c *Coordinator) issuer(alg string) *token.Issuer {
	return c.tok.Load().issuers[alg]
}

// jwksURL is where the token keys are published, when the issuer name is
// the coordinator's URL; tokens carry it as jku, as Azure's do.
func (c *Coordinator) jwksURL() string {
	u, err := url.Parse(c.cfg.Issuer)
	if err != nil || !u.IsAbs() || (u.Scheme != "https" && u.Scheme != "http") || u.RawQuery != "" || u.Fragment != "" {
		return ""
	}
	return u.JoinPath("certs").String()
}

// keyringLifetime is the maximum token lifetime of the keyring: the token
// TTL in whole seconds (as the keyring is stored), at least one second.
func (c *Coordinator) keyringLifetime() time.Duration {
	return max(time.Second, (c.cfg.TokenTTL + time.Second - 1).Truncate(time.Second))
}

// newTokenState makes the issuers of ring.
func (c *Coordinator) newTokenState(ring *token.Keyring, rev int64) (*tokenState, error) {
	st := &tokenState{ring: ring, revision: rev, issuers: map[string]*token.Issuer{}}
	for _, alg := range []string{token.ES256, token.RS256} {
		iss, err := token.NewIssuer(token.Config{Issuer: c.cfg.Issuer, Keyring: ring, TTL: c.cfg.TokenTTL, Algorithm: alg, JWKSURL: c.jwksURL()})
		if err != nil {
			return nil, fmt.Errorf("coordinator: %s token issuer: %w", alg, err)
		}
		st.issuers[alg] = iss
	}
	return st, nil
}

// loadTokens reads the sealed keyring, or makes it on first start (moving
// the single token key of earlier versions into it). A stored keyring
// without a current key of an algorithm gets one, and one whose maximum
// token lifetime is below the TTL gets the TTL; either change is stored.
func (c *Coordinator) loadTokens(ctx context.Context) (*tokenState, error) {
	for range 3 {
		kv, err := c.cfg.Store.Get(ctx, keyTokenKeyring)
		switch {
		case err == nil:
			st, err := c.openKeyring(ctx, kv)
			if errors.Is(err, store.ErrConflict) {
				continue // another coordinator changed it meanwhile
			}
			return st, err
		case !errors.Is(err, store.ErrNotFound):
			return nil, fmt.Errorf("coordinator: token keyring: %w", err)
		}
		st, err := c.createKeyring(ctx)
		if errors.Is(err, store.ErrConflict) {
			continue // another coordinator made it meanwhile
		}
		return st, err
	}
	return nil, errors.New("coordinator: token keyring: changed concurrently three times; restart")
}

func (c *Coordinator) openKeyring(ctx context.Context, kv store.KV) (*tokenState, error) {
	pt, err := c.cfg.Sealer.Open(keyTokenKeyring, kv.Value)
	if err != nil {
		return nil, fmt.Errorf("coordinator: token keyring: %w", err)
	}
	ring, err := token.ParseKeyring(pt)
	if err != nil {
		return nil, fmt.Errorf("coordinator: token keyring: %w", err)
	}
	changed := false
	if ring.MaxLifetime() < c.keyringLifetime() {
		if ring, err = withMaxLifetime(ring, c.keyringLifetime()); err != nil {
			return nil, err
		}
		changed = true
	}
	for _, alg := range []string{token.ES256, token.RS256} {
		if _, ok := ring.Current(alg); ok {
			continue
		}
		k, err := token.GenerateKey(alg, c.now())
		if err != nil {
			return nil, err
		}
		if err := ring.Rotate(c.now(), k); err != nil {
			return nil, err
		}
		changed = true
	}
	rev := kv.Revision
	if changed {
		if rev, err = c.storeKeyring(ctx, ring, kv.Revision); err != nil {
			return nil, err
		}
	}
	return c.newTokenState(ring, rev)
}

func (c *Coordinator) createKeyring(ctx context.Context) (*tokenState, error) {
	now := c.now()
	var es token.Key
	var legacy *store.Op
	switch kv, err := c.cfg.Store.Get(ctx, keyTokenKey); {
	case err == nil:
		priv, err := c.legacyTokenKey(kv.Value)
		if err != nil {
			return nil, err
		}
		if es, err = token.NewKey(token.ES256, priv, now); err != nil {
			return nil, fmt.Errorf("coordinator: token key: %w", err)
		}
		legacy = &store.Op{Key: keyTokenKey, Delete: true, Expect: kv.Revision}
	case errors.Is(err, store.ErrNotFound):
		if es, err = token.GenerateKey(token.ES256, now); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("coordinator: token key: %w", err)
	}
	rs, err := token.GenerateKey(token.RS256, now)
	if err != nil {
		return nil, err
	}
	ring, err := token.NewKeyring(c.keyringLifetime(), es, rs)
	if err != nil {
		return nil, err
	}
	sealed, err := c.sealKeyring(ring)
	if err != nil {
		return nil, err
	}
	ops := []store.Op{{Key: keyTokenKeyring, Value: sealed, Expect: 0}}
	if legacy != nil {
		ops = append(ops, *legacy)
	}
	rev, err := c.cfg.Store.Apply(ctx, ops...)
	if err != nil {
		return nil, fmt.Errorf("coordinator: storing the token keyring: %w", err)
	}
	if legacy != nil {
		c.log.Info("token key moved into the token keyring", "kid", es.ID)
	}
	return c.newTokenState(ring, rev)
}

// legacyTokenKey opens the single sealed ES256 key of earlier versions.
func (c *Coordinator) legacyTokenKey(sealed []byte) (*ecdsa.PrivateKey, error) {
	pt, err := c.cfg.Sealer.Open(keyTokenKey, sealed)
	if err != nil {
		return nil, fmt.Errorf("coordinator: token key: %w", err)
	}
	k, err := x509.ParsePKCS8PrivateKey(pt)
	if err != nil {
		return nil, fmt.Errorf("coordinator: token key: %w", err)
	}
	ek, ok := k.(*ecdsa.PrivateKey)
	if !ok {
		return nil, errors.New("coordinator: token key is not ECDSA")
	}
	return ek, nil
}

func (c *Coordinator) sealKeyring(ring *token.Keyring) ([]byte, error) {
	pt, err := ring.MarshalJSON()
	if err != nil {
		return nil, err
	}
	return c.cfg.Sealer.Seal(keyTokenKeyring, pt)
}

// storeKeyring writes ring if the stored keyring is still at revision
// expect, and returns the new revision.
func (c *Coordinator) storeKeyring(ctx context.Context, ring *token.Keyring, expect int64) (int64, error) {
	sealed, err := c.sealKeyring(ring)
	if err != nil {
		return 0, err
	}
	rev, err := store.Put(ctx, c.cfg.Store, keyTokenKeyring, sealed, expect)
	if err != nil {
		return 0, fmt.Errorf("coordinator: storing the token keyring: %w", err)
	}
	return rev, nil
}

// withMaxLifetime returns ring with a longer maximum token lifetime (the
// token TTL was raised). Keys already retiring keep their retirement
// times: their tokens were issued under the shorter TTL.
func withMaxLifetime(ring *token.Keyring, d time.Duration) (*token.Keyring, error) {
	b, err := ring.MarshalJSON()
	if err != nil {
		return nil, err
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, err
	}
	doc["maxLifetimeSeconds"] = json.RawMessage(fmt.Sprint(int64(d / time.Second)))
	if b, err = json.Marshal(doc); err != nil {
		return nil, err
	}
	return token.ParseKeyring(b)
}

// RotateTokenKeys makes new ES256 and RS256 keys current from now. The
// keys they replace stay published, and their tokens valid, until now plus
// the maximum token lifetime; keys past their retirement are dropped. The
// keyring is stored before the new keys sign anything.
func (c *Coordinator) RotateTokenKeys(ctx context.Context, now time.Time) error {
	c.rotateMu.Lock()
	defer c.rotateMu.Unlock()
	cur := c.tok.Load()
	b, err := cur.ring.MarshalJSON()
	if err != nil {
		return err
	}
	ring, err := token.ParseKeyring(b) // a copy: cur stays in force until stored
	if err != nil {
		return err
	}
	for _, alg := range []string{token.ES256, token.RS256} {
		k, err := token.GenerateKey(alg, now)
		if err != nil {
			return err
		}
		if err := ring.Rotate(now, k); err != nil {
			return err
		}
	}
	rev, err := c.storeKeyring(ctx, ring, cur.revision)
	if err != nil {
		if errors.Is(err, store.ErrConflict) {
			// Another coordinator on this store rotated: take its keyring.
			if st, lerr := c.loadTokens(ctx); lerr == nil {
				c.tok.Store(st)
			}
		}
		return err
	}
	st, err := c.newTokenState(ring, rev)
	if err != nil {
		return err
	}
	c.tok.Store(st)
	es, _ := ring.Current(token.ES256)
	rs, _ := ring.Current(token.RS256)
	c.log.Info("token keys rotated", "es256", es.ID, "rs256", rs.ID, "published", len(ring.Published(now)))
	return nil
}

// TokenKeysRotatedAt is when the current native (ES256) token key came
// into service: what a rotation schedule measures from.
func (c *Coordinator) TokenKeysRotatedAt() time.Time {
	k, _ := c.tok.Load().ring.Current(token.ES256)
	return k.NotBefore
}

// handleCerts serves the JWK Set of every published token key.
func (c *Coordinator) handleCerts(w http.ResponseWriter, r *http.Request) {
	b, err := c.issuer(token.ES256).JWKS(c.now())
	if err != nil {
		c.problem(w, r, http.StatusInternalServerError, "Keys unavailable", err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b)
}

// handleOpenIDConfiguration serves OpenID discovery with Config.Issuer as
// the base URL.
func (c *Coordinator) handleOpenIDConfiguration(w http.ResponseWriter, r *http.Request) {
	b, err := c.issuer(token.ES256).OpenIDConfiguration(c.cfg.Issuer)
	if err != nil {
		c.problem(w, r, http.StatusNotFound, "Discovery unavailable",
			fmt.Errorf("the coordinator's issuer name is not its URL (serve sets it): %w", err))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b)
}
