package attest

import "errors"

// Errors every verifier wraps, so that callers can tell refusals apart with
// errors.Is. Each names the stage that refused.
var (
	// ErrUnknownFormat: no verifier is registered for the evidence format.
	ErrUnknownFormat = errors.New("unknown evidence format")
	// ErrMalformed: the evidence does not parse strictly (size, version,
	// reserved fields, trailing bytes).
	ErrMalformed = errors.New("malformed evidence")
	// ErrChain: a certificate chain does not lead to a trusted root, or a
	// certificate is expired or unfit for its role.
	ErrChain = errors.New("untrusted certificate chain")
	// ErrSignature: a signature over the evidence does not verify.
	ErrSignature = errors.New("bad evidence signature")
	// ErrSimulated: the evidence comes from a simulated TEE and the caller
	// did not allow simulation.
	ErrSimulated = errors.New("simulated TEE evidence not allowed (set allowSimulated in the manifest to accept it)")
	// ErrBinding: the report data does not bind the runtime data presented.
	ErrBinding = errors.New("report data does not bind the runtime data")
)
