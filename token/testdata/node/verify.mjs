// Test-only independent verifier for trustbound tokens (token/interop_test.go).
// Given only the JWKS URL, it verifies the token with jose (signature by the
// key named by kid, issuer, exp/nbf) and prints {"protectedHeader", "payload"}
// as JSON, or exits non-zero with the reason.
//
//   node verify.mjs <jwks-url> <issuer> <token> [now-unix-seconds]
import { createRemoteJWKSet, jwtVerify } from 'jose';

const [jwksUrl, issuer, token, now] = process.argv.slice(2);
if (!jwksUrl || !issuer || !token) {
  console.error('usage: node verify.mjs <jwks-url> <issuer> <token> [now-unix-seconds]');
  process.exit(2);
}

try {
  const jwks = createRemoteJWKSet(new URL(jwksUrl));
  const options = { issuer, algorithms: ['ES256', 'RS256'] };
  if (now !== undefined) {
    options.currentDate = new Date(Number(now) * 1000);
  }
  const { payload, protectedHeader } = await jwtVerify(token, jwks, options);
  process.stdout.write(JSON.stringify({ protectedHeader, payload }) + '\n');
} catch (err) {
  console.error(`refused: ${err.code ?? 'ERROR'}: ${err.message}`);
  process.exit(1);
}
