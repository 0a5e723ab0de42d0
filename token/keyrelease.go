package token

import "fmt"

// KeyReleaseType is the JWS typ of key release results (the Key Vault
// style release surface): not "JWT", so that Verify never takes one for an
// attestation token.
const KeyReleaseType = "JOSE"

// SignKeyRelease signs a key release result (Key Vault's release payload:
// {"request": …, "response": …}) with the current key. payload may not set
// a registered JWT claim: a release result is not a token.
func (i *Issuer) SignKeyRelease(payload map[string]any) (string, error) {
	for _, name := range []string{"iss", "sub", "aud", "exp", "nbf", "iat", "jti"} {
		if _, ok := payload[name]; ok {
			return "", fmt.Errorf("token: a key release result may not set %q", name)
		}
	}
	key, ok := i.ring.Current(i.alg)
	if !ok {
		return "", fmt.Errorf("token: the keyring has no current %s key", i.alg)
	}
	return i.sign(&key, KeyReleaseType, payload)
}
