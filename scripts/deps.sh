#!/usr/bin/env bash
# Installs what the test suite needs on a fresh Debian machine with Go.
set -euo pipefail
need=()
command -v go >/dev/null || { echo "Go 1.26 is required (https://go.dev/dl)"; exit 1; }
# Node.js and npm run jose, the independent JWT verifier of token/interop_test.go.
command -v node >/dev/null || need+=(nodejs)
command -v npm >/dev/null || need+=(npm)
# swtpm (libtpms) is the TPM the Azure vTPM path of the agent is tested against (agent/tee).
command -v swtpm >/dev/null || need+=(swtpm swtpm-tools)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq "${need[@]}"
  else sudo apt-get update -qq && sudo apt-get install -y -qq "${need[@]}"; fi
fi
# jose 6 (the interop tests' JWT/JWE library) needs Node.js 20 or later.
if ! node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)'; then
  echo "Node.js >= 20 is required by the interop tests (found $(node --version)); Debian 13 has it, or use NodeSource" >&2
  exit 1
fi
go mod download
npm ci --prefix token/testdata/node --no-audit --no-fund  # jose, the independent JWT verifier of token/interop_test.go
npm ci --prefix coordinator/testdata/node --no-audit --no-fund  # canonicalize and jose, the independent KBS client of coordinator/kbs_interop_test.go
