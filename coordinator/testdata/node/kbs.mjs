// Test-only: what a KBS client does with trustbound's KBS answers, done by
// independent implementations. Reads {"canon": [JSON text...], "jwe":
// [{"jwe": flattened JWE object, "jwk": private JWK}...]} on stdin and
// writes {"canon": [RFC 8785 text...], "plain": [base64 plaintext...]}.
// Any failure exits non-zero with the reason on stderr.
import canonicalize from 'canonicalize';
import { flattenedDecrypt, importJWK } from 'jose';

const chunks = [];
for await (const c of process.stdin) chunks.push(c);
const input = JSON.parse(Buffer.concat(chunks).toString('utf8'));

const canon = input.canon.map((text) => canonicalize(JSON.parse(text)));
const plain = [];
for (const { jwe, jwk } of input.jwe) {
  const key = await importJWK(jwk, jwe.protected ? JSON.parse(Buffer.from(jwe.protected, 'base64url')).alg : undefined);
  const { plaintext } = await flattenedDecrypt(jwe, key, {
    keyManagementAlgorithms: ['RSA-OAEP-256', 'ECDH-ES+A256KW'],
    contentEncryptionAlgorithms: ['A256GCM'],
  });
  plain.push(Buffer.from(plaintext).toString('base64'));
}
process.stdout.write(JSON.stringify({ canon, plain }));
