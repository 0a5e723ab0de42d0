package collateral

import (
	"errors"
	"fmt"
	"time"
)

// Errors every failure wraps, so that callers can tell them apart with
// errors.Is.
var (
	// ErrNotFound: the source has no such collateral (HTTP 404, or not in
	// the cache and offline bundles of a Fetcher without network).
	ErrNotFound = errors.New("collateral not found")
	// ErrUnavailable: the vendor service could not give the collateral now
	// (network, throttling, 5xx, a malformed or oversized answer); retry
	// later or supply it offline (trustbound verify --collateral PATH).
	ErrUnavailable = errors.New("collateral unavailable")
	// ErrRefused: the URL is not one this package fetches (not https, not
	// a vendor collateral host, not a known collateral URL).
	ErrRefused = errors.New("collateral URL refused")
	// ErrMalformed: a bundle, a bundle directory file or a cache file does
	// not decode strictly.
	ErrMalformed = errors.New("malformed collateral")
)

// StaleError is returned, instead of a body, when the only copy of the
// collateral is past its expiry (a CRL past its NextUpdate, a certificate
// past its NotAfter) and could not be refreshed. It is ErrUnavailable and
// also wraps the cause. It carries no body: stale collateral is never
// served.
type StaleError struct {
	URL     string
	Expired time.Time // when the copy stopped being fresh
	Err     error     // why it could not be refreshed
}

func (e *StaleError) Error() string {
	return fmt.Sprintf("collateral %s expired at %s and could not be refreshed: %v",
		e.URL, e.Expired.UTC().Format(time.RFC3339), e.Err)
}

// Unwrap makes a StaleError match ErrUnavailable and its cause.
func (e *StaleError) Unwrap() []error { return []error{ErrUnavailable, e.Err} }
