# trustbound: the two commands of the README, and what they need.
GO ?= go

.PHONY: quickstart test deps vet fuzz build bench

quickstart:
	$(GO) run ./cmd/trustbound quickstart

# The whole test suite, after installing what the tests need.
test: deps
	gofmt -l . | (! grep .) || (echo "gofmt needed on the files above"; exit 1)
	$(GO) vet ./...
	$(GO) test -count=1 ./...

# System packages the tests need: Node.js (jose interop), swtpm (vTPM path).
deps:
	./scripts/deps.sh

build:
	$(GO) build -o bin/trustbound ./cmd/trustbound

# A short run of every fuzz target (the seed corpora run in 'make test').
fuzz:
	./scripts/fuzz.sh 30s

# The performance harness: every figure beside its baseline, written to
# docs/bench (results.json, results.txt, SVG plots) for BENCHMARKS.md.
bench:
	$(GO) run ./cmd/trustbound bench --out docs/bench
