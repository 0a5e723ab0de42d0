package agent

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/trustbound/trustbound/attest"
)

// Renewer keeps a workload's certificate fresh: once the certificate is
// past two thirds of its lifetime it attests again and takes a new release,
// with the same TEE-held keys (the Identity is never regenerated).
type Renewer struct {
	Client   *Client
	TEE      attest.Attester
	Workload string
	Identity *Identity
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Wait blocks until d has passed or ctx is done (default: a timer).
	// Tests inject a fake.
	Wait func(ctx context.Context, d time.Duration) error
	// RetryInterval is the wait after a failed renewal (default 10s).
	RetryInterval time.Duration
	// Failed, if set, hears of each failed renewal before the retry.
	Failed func(error)
}

func (r *Renewer) now() time.Time {
	if r.Now == nil {
		return time.Now()
	}
	return r.Now()
}

// RenewAt returns when the certificate of res is due for renewal:
// NotBefore plus two thirds of its lifetime.
func RenewAt(res *Result) (time.Time, error) {
	chain, err := parseChainPEM(res.Certificate)
	if err != nil {
		return time.Time{}, fmt.Errorf("renewal: certificate: %w", err)
	}
	c := chain[0]
	return c.NotBefore.Add(c.NotAfter.Sub(c.NotBefore) * 2 / 3), nil
}

// RenewIfDue attests and releases again when res is due for renewal, and
// returns the new result and true; otherwise res and false.
func (r *Renewer) RenewIfDue(ctx context.Context, res *Result) (*Result, bool, error) {
	at, err := RenewAt(res)
	if err != nil {
		return nil, false, err
	}
	now := r.now()
	if now.Before(at) {
		return res, false, nil
	}
	if r.Identity == nil || r.Client == nil || r.TEE == nil {
		return nil, false, errors.New("renewal: Client, TEE and Identity are required")
	}
	next, err := r.Identity.Attest(ctx, r.Client, r.TEE, r.Workload, now)
	if err != nil {
		return nil, false, fmt.Errorf("renewal: %w", err)
	}
	return next, true, nil
}

// Loop renews res whenever it is due until ctx is done, calling renewed
// with each new result (e.g. to write it out). A failed renewal is retried
// after RetryInterval; Loop returns the error of renewed, or ctx.Err().
func (r *Renewer) Loop(ctx context.Context, res *Result, renewed func(*Result) error) error {
	wait := r.Wait
	if wait == nil {
		wait = sleep
	}
	retry := r.RetryInterval
	if retry <= 0 {
		retry = 10 * time.Second
	}
	for {
		at, err := RenewAt(res)
		if err != nil {
			return err
		}
		if d := at.Sub(r.now()); d > 0 {
			if err := wait(ctx, d); err != nil {
				return err
			}
		}
		next, did, err := r.RenewIfDue(ctx, res)
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case err != nil:
			if r.Failed != nil {
				r.Failed(err)
			}
			if err := wait(ctx, retry); err != nil {
				return err
			}
			continue
		case !did:
			continue
		}
		res = next
		if err := renewed(res); err != nil {
			return err
		}
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
