# demixdp build plumbing. `make test` and `make demo` need root and Go; they
# install iproute2 and netcat-openbsd with apt if missing (target deps).
GO        ?= go
FUZZTIME  ?= 10s
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: all build deps test demo lint fuzz clean bench

all: build

build:
	$(GO) build ./...

# What the tests and the demo run besides Go: iproute2 (ip netns),
# OpenBSD netcat (the stock-tool interop tests), and curl, wrk and
# redis-server (the dxnet tests: real HTTP and Redis peers).
# Installed only if missing.
deps:
	@missing=""; command -v ip >/dev/null 2>&1 || missing="$$missing iproute2"; \
	command -v nc >/dev/null 2>&1 || missing="$$missing netcat-openbsd"; \
	command -v curl >/dev/null 2>&1 || missing="$$missing curl"; \
	command -v wrk >/dev/null 2>&1 || missing="$$missing wrk"; \
	command -v redis-server >/dev/null 2>&1 || missing="$$missing redis-server"; \
	if [ -n "$$missing" ]; then echo "installing$$missing"; \
		apt-get install -y --no-install-recommends $$missing >/dev/null 2>&1 || \
		{ apt-get update >/dev/null && apt-get install -y --no-install-recommends $$missing; }; fi

# Privileged tests run for real as root (and skip without it, unless
# DEMIXDP_REQUIRE_PRIV=1 makes a skip a failure). Afterwards no lab
# namespace (prefix "dx") may be left behind.
test: deps
	@ip netns list 2>/dev/null | awk '/^dx/ {print $$1}' | sort > .netns-before || true
	$(GO) test -count=1 -timeout 15m ./...
	@ip netns list 2>/dev/null | awk '/^dx/ {print $$1}' | sort > .netns-after || true
	@leaked=$$(comm -13 .netns-before .netns-after); rm -f .netns-before .netns-after; \
	if [ -n "$$leaked" ]; then echo "make test: network namespaces left behind: $$leaked" >&2; exit 1; fi

demo: deps
	bash scripts/demo.sh

# The benchmark suite (bench/ is its own module: gVisor and asavie stay out
# of demixdp's go.mod). Builds a throwaway lab, removes it on exit, writes
# bench/results/latest.{json,md} and latest-cdf.svg. Needs root.
bench:
	cd bench && $(GO) build -o /tmp/dxbench.$$$$ ./cmd/dxbench && { /tmp/dxbench.$$$$ run -root .. -out results; rc=$$?; rm -f /tmp/dxbench.$$$$; exit $$rc; }

lint:
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt -l:" >&2; echo "$$out" >&2; exit 1; fi

# Every Fuzz target of every package, FUZZTIME each.
fuzz:
	@set -e; for pkg in $$($(GO) list ./...); do \
		for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
			echo "== $$pkg $$f ($(FUZZTIME))"; \
			$(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg; \
		done; \
	done

clean:
	$(GO) clean ./...
	$(GO) clean -testcache -fuzzcache
