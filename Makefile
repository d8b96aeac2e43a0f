# demixdp build plumbing. `make test` and `make demo` need root and Go; they
# install iproute2 and netcat-openbsd with apt if missing (target deps).
GO        ?= go
FUZZTIME  ?= 10s
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2

BUILD     ?= build
PREFIX    ?= /usr/local
CC        ?= cc

.PHONY: all build deps test demo lint fuzz clean bench libdemi install

all: build

build:
	$(GO) build ./...

# What the tests and the demo run besides Go: iproute2 (ip netns), OpenBSD
# netcat (the stock-tool interop tests), tcpdump and tshark (they read the
# pcapng captures back), curl and promtool (from Debian's prometheus
# package: they scrape and check /metrics), gcc, g++ and pkg-config for
# the C ABI (cgo, the C examples and tests), taskset (util-linux), which
# pins the ends of `make bench`, and wrk and redis-server (the dxnet and
# http-hello tests and the http bench workload: real HTTP and Redis
# peers), and redis-cli and redis-benchmark from redis-tools (the kv tests
# and the resp bench workload). Installed only if missing;
# noninteractive, so tshark's debconf question (non-root capture) keeps
# its default, no.
deps:
	@missing=""; command -v ip >/dev/null 2>&1 || missing="$$missing iproute2"; \
	command -v nc >/dev/null 2>&1 || missing="$$missing netcat-openbsd"; \
	command -v tcpdump >/dev/null 2>&1 || missing="$$missing tcpdump"; \
	command -v tshark >/dev/null 2>&1 || missing="$$missing tshark"; \
	command -v curl >/dev/null 2>&1 || missing="$$missing curl"; \
	command -v promtool >/dev/null 2>&1 || missing="$$missing prometheus"; \
	command -v gcc >/dev/null 2>&1 || missing="$$missing gcc libc6-dev"; \
	command -v g++ >/dev/null 2>&1 || missing="$$missing g++"; \
	command -v pkg-config >/dev/null 2>&1 || missing="$$missing pkg-config"; \
	command -v taskset >/dev/null 2>&1 || missing="$$missing util-linux"; \
	command -v wrk >/dev/null 2>&1 || missing="$$missing wrk"; \
	command -v redis-server >/dev/null 2>&1 || missing="$$missing redis-server"; \
	{ command -v redis-cli && command -v redis-benchmark; } >/dev/null 2>&1 || missing="$$missing redis-tools"; \
	if [ -n "$$missing" ]; then echo "installing$$missing"; export DEBIAN_FRONTEND=noninteractive; \
		apt-get install -y --no-install-recommends $$missing >/dev/null 2>&1 || \
		{ apt-get update >/dev/null && apt-get install -y --no-install-recommends $$missing; }; fi

# Privileged tests run for real as root (and skip without it, unless
# DEMIXDP_REQUIRE_PRIV=1 makes a skip a failure). Afterwards no lab
# namespace (prefix "dx") may be left behind.
test: deps
	@ip netns list 2>/dev/null | awk '/^dx/ {print $$1}' | sort > .netns-before || true
	$(GO) test -count=1 -timeout 15m ./...
	cd bench && $(GO) test -count=1 -timeout 5m ./...
	@ip netns list 2>/dev/null | awk '/^dx/ {print $$1}' | sort > .netns-after || true
	@leaked=$$(comm -13 .netns-before .netns-after); rm -f .netns-before .netns-after; \
	if [ -n "$$leaked" ]; then echo "make test: network namespaces left behind: $$leaked" >&2; exit 1; fi

demo: deps
	bash scripts/demo.sh

# The benchmark suite (bench/ is its own module: gVisor and asavie stay out
# of demixdp's go.mod). Builds a throwaway lab, removes it on exit, writes
# bench/results/latest.{json,md} and latest-cdf.svg. Needs root. One
# workload alone, for a smoke test: build dxbench and run
# `dxbench run -root .. -out /tmp/x -rounds 1 -micro=false -only bulk_ceiling`.
bench:
	cd bench && $(GO) build -o /tmp/dxbench.$$$$ ./cmd/dxbench && { /tmp/dxbench.$$$$ run -root .. -out results; rc=$$?; rm -f /tmp/dxbench.$$$$; exit $$rc; }

# The Demikernel C ABI: $(BUILD)/libdemikernel.so (cgo c-shared, Demikernel's
# library name, so -ldemikernel links), $(BUILD)/demikernel.pc (relocatable:
# it finds include/ and the library from its own directory) and the C
# examples in $(BUILD)/examples, built with plain $(CC) against include/.
EXAMPLES_C := udp-ping-pong tcp-ping-pong
libdemi:
	@mkdir -p $(BUILD)/examples
	CGO_ENABLED=1 $(GO) build -buildmode=c-shared -ldflags=-extldflags=-Wl,-soname,libdemikernel.so -o $(BUILD)/libdemikernel.so ./cabi
	@rm -f $(BUILD)/libdemikernel.h # cgo's header; the ABI is include/demi/*.h
	sed -e 's|@PREFIX@|$(CURDIR)|' -e 's|@LIBDIR@|$${pcfiledir}|' -e 's|@INCLUDEDIR@|$${prefix}/include|' cabi/demikernel.pc.in > $(BUILD)/demikernel.pc
	for ex in $(EXAMPLES_C); do \
		$(CC) -std=c99 -O2 -Wall -Wextra -Werror -Iinclude -o $(BUILD)/examples/$$ex examples/c/$$ex.c \
			-L$(BUILD) -ldemikernel -Wl,-rpath,'$$ORIGIN/..' || exit 1; \
	done

# Installs the library, the headers and demikernel.pc under $(PREFIX)
# (DESTDIR for staging).
install: libdemi
	install -d $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/include/demi
	install -m 0755 $(BUILD)/libdemikernel.so $(DESTDIR)$(PREFIX)/lib/
	install -m 0644 include/demi/*.h $(DESTDIR)$(PREFIX)/include/demi/
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$${prefix}/lib|' -e 's|@INCLUDEDIR@|$${prefix}/include|' \
		cabi/demikernel.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/demikernel.pc

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
	rm -rf $(BUILD)
	$(GO) clean -testcache -fuzzcache
