package coordinator

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/trustbound/trustbound/attest"
	"github.com/trustbound/trustbound/initdata"
)

// init-data at /kbs/v0/attest, as the Initdata specification of
// Confidential Containers (trustee kbs/docs/initdata.md) and its
// implementations (trustee's kbs, kata-containers' kata-types initdata)
// define it:
//
//   - the request's "init-data" is {"format": "toml", "body": the initdata
//     TOML document, as text}; any other format is refused;
//   - the document's top-level "algorithm" (sha256, sha384 or sha512)
//     names the hash; the digest is that hash of the body's bytes exactly
//     as sent (not of a re-serialisation);
//   - bare snp: the digest, zero-padded or truncated to 32 bytes, must be
//     HOST_DATA; bare tdx: zero-padded or truncated to 48 bytes, MRCONFIGID
//     (trustee's regularize_data, kata's adjust_digest);
//   - az-snp-vtpm and az-tdx-vtpm: the attester extends vTPM PCR 8 with the
//     digest once, so PCR 8 must be SHA-256(32 zero bytes ‖ digest)
//     (trustee's verify_init_data); the digest must then be 32 bytes, i.e.
//     algorithm sha256;
//   - comparisons are constant time; a mismatch refuses the attestation
//     (403), naming init-data; no init-data compares nothing (a hostData
//     or PCR 8 pinned in the manifest still applies through appraisal);
//   - the claims then carry init_data (hex of the digest, as trustee's EAR
//     does) and init_data_algorithm in Platform, so the token shows them.
//
// Reading "algorithm" takes a small part of TOML (kbsInitDataAlgorithm):
// key/value lines of the root table up to the first table header, basic
// or literal single-line strings. A document it cannot read is refused.
// Reading it wrongly could only make the digest differ from what the TEE
// bound, which refuses: the bound bytes are the body's, whatever the hash.

// kbsInitDataPCR is the vTPM PCR the az-*-vtpm attesters extend with the
// init-data digest.
const kbsInitDataPCR = 8

// errInitData is wrapped by malformed init-data refusals (400).
var errInitData = errors.New("init-data")

// kbsInitDataDigest returns the algorithm and the digest of init-data d.
func kbsInitDataDigest(d *kbsInitData) (string, []byte, error) {
	if d.Format != "toml" {
		return "", nil, fmt.Errorf("%w.format is %q; the Initdata specification defines \"toml\"", errInitData, d.Format)
	}
	alg, err := kbsInitDataAlgorithm(d.Body)
	if err != nil {
		return "", nil, fmt.Errorf("%w.body: %w", errInitData, err)
	}
	digest, err := initdata.Digest(alg, []byte(d.Body))
	if err != nil {
		return "", nil, fmt.Errorf("%w.body: %w", errInitData, err)
	}
	return alg, digest, nil
}

// kbsInitDataBinds checks init-data d against the verified claims of the
// KBS tee, and records its digest in the claims. Malformed init-data
// wraps errInitData; a mismatch wraps attest.ErrBinding.
func kbsInitDataBinds(tee string, d *kbsInitData, claims *attest.Claims) error {
	alg, digest, err := kbsInitDataDigest(d)
	if err != nil {
		return err
	}
	switch tee {
	case "snp", "tdx":
		field, n := "HOST_DATA", 32
		if tee == "tdx" {
			field, n = "MRCONFIGID", 48
		}
		if subtle.ConstantTimeCompare(initdata.Regularize(digest, n), claims.HostData) != 1 {
			return fmt.Errorf("%w: the %s digest of init-data.body is not the evidence's %s", attest.ErrBinding, alg, field)
		}
	case "az-snp-vtpm", "az-tdx-vtpm":
		if len(digest) != sha256.Size {
			return fmt.Errorf("%w.body: algorithm %q: the %s attester extends vTPM PCR %d with the init-data digest, which must then be SHA-256", errInitData, alg, tee, kbsInitDataPCR)
		}
		pcr, ok := claims.PCRs[kbsInitDataPCR]
		if !ok {
			return fmt.Errorf("%w: the TPM quote does not cover PCR %d, which binds init-data", attest.ErrBinding, kbsInitDataPCR)
		}
		want := sha256.Sum256(append(make([]byte, sha256.Size), digest...))
		if subtle.ConstantTimeCompare(want[:], pcr) != 1 {
			return fmt.Errorf("%w: vTPM PCR %d is not SHA-256(32 zero bytes ‖ the digest of init-data.body)", attest.ErrBinding, kbsInitDataPCR)
		}
	default:
		return fmt.Errorf("%w is not checked for tee %q", errInitData, tee)
	}
	if claims.Platform == nil {
		claims.Platform = map[string]string{}
	}
	claims.Platform["init_data"] = hex.EncodeToString(digest)
	claims.Platform["init_data_algorithm"] = alg
	return nil
}

// kbsInitDataAlgorithm reads the top-level "algorithm" string of an
// initdata TOML document: the key/value lines before the first table
// header ("[data]"), skipping comments, blank lines and multi-line
// strings. The key may be bare or quoted; the value must be a single-line
// basic string without escapes or a literal string. A document whose root
// table has no algorithm, or two, is refused.
func kbsInitDataAlgorithm(doc string) (string, error) {
	var found []string
	inMulti := "" // the delimiter of the multi-line string being skipped
	for n, line := range strings.Split(doc, "\n") {
		line = strings.TrimSuffix(line, "\r")
		if inMulti != "" {
			if strings.Contains(line, inMulti) {
				inMulti = ""
			}
			continue
		}
		t := strings.TrimLeft(line, " \t")
		if t == "" || t[0] == '#' {
			continue
		}
		if t[0] == '[' {
			break // the root table ends at the first table header
		}
		key, rest, ok := tomlKey(t)
		if !ok {
			return "", fmt.Errorf("line %d: not a TOML key/value line", n+1)
		}
		rest = strings.TrimLeft(rest, " \t")
		for _, delim := range []string{`"""`, `'''`} {
			if strings.HasPrefix(rest, delim) && !strings.Contains(rest[3:], delim) {
				inMulti = delim
			}
		}
		if key != "algorithm" {
			continue
		}
		v, ok := tomlSimpleString(rest)
		if !ok {
			return "", fmt.Errorf("line %d: algorithm is not a single-line TOML string", n+1)
		}
		found = append(found, v)
	}
	switch len(found) {
	case 0:
		return "", errors.New("no top-level algorithm")
	case 1:
		return found[0], nil
	}
	return "", errors.New("algorithm is defined twice")
}

// tomlKey splits a key/value line into its key (bare or quoted, no
// escapes; a dotted key is returned as written) and what follows "=".
func tomlKey(t string) (key, rest string, ok bool) {
	if t[0] == '"' || t[0] == '\'' {
		end := strings.IndexByte(t[1:], t[0])
		if end < 0 || strings.ContainsRune(t[1:end+1], '\\') {
			return "", "", false
		}
		key, t = t[1:end+1], t[end+2:]
	} else {
		i := 0
		for i < len(t) && (t[i] >= 'a' && t[i] <= 'z' || t[i] >= 'A' && t[i] <= 'Z' || t[i] >= '0' && t[i] <= '9' || t[i] == '_' || t[i] == '-' || t[i] == '.') {
			i++
		}
		if i == 0 {
			return "", "", false
		}
		key, t = t[:i], t[i:]
	}
	t = strings.TrimLeft(t, " \t")
	if t == "" || t[0] != '=' {
		return "", "", false
	}
	return key, t[1:], true
}

// tomlSimpleString reads a single-line basic string without escapes or a
// literal string, followed by nothing but blanks and a comment.
func tomlSimpleString(v string) (string, bool) {
	if v == "" || (v[0] != '"' && v[0] != '\'') || strings.HasPrefix(v, `"""`) || strings.HasPrefix(v, `'''`) {
		return "", false
	}
	end := strings.IndexByte(v[1:], v[0])
	if end < 0 {
		return "", false
	}
	s, after := v[1:end+1], strings.TrimLeft(v[end+2:], " \t")
	if v[0] == '"' && strings.ContainsRune(s, '\\') {
		return "", false
	}
	if after != "" && after[0] != '#' {
		return "", false
	}
	return s, true
}
