# lvslab — the two commands a newcomer needs are `make demo` and `make test`.
# Both install what they need first (Go modules; Debian packages when root).

GO       ?= go
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -X main.version=$(VERSION)
BIN      := bin/lvslab
# Debian packages the tests use as real peers.
DEB_PKGS := iproute2 nftables curl wrk nginx-light tcpdump tshark chromium ethtool iperf3 socat

.PHONY: all build deps test test-short demo bench fuzz vet clean

all: build

build:
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/lvslab

# deps installs what a fresh Debian/Ubuntu machine lacks: Go modules always,
# Debian packages when running as root and a package is missing.
deps:
	$(GO) mod download
	@missing=$$(for p in $(DEB_PKGS); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			echo "installing: $$missing"; \
			DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
			DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
		else echo "not root: tests that need these packages will skip: $$missing"; fi; \
	fi

# vet runs go vet and staticcheck (pinned: the module proxy serves this
# version), which also finds dead code.
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.6.0
vet:
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

# test runs every test, including the root-only namespace tests (they skip
# with a reason when they cannot run).
test: deps vet
	$(GO) test -count=1 -timeout 25m ./...

test-short:
	$(GO) test -short ./...

# demo runs the quickstart scenario end to end: a NAT lab with three real
# servers, 20 s of load, a live weight change, the report in lvslab-run-quickstart/.
demo: deps build
	./$(BIN) run quickstart --out lvslab-run-quickstart

# bench runs the Go micro-benchmarks of the hot paths, then the forwarding
# comparison (kernel routing, nftables DNAT, the lvslab director) with short
# measurements, interleaved in 3 rounds (medians); the table is printed, the rows land in $(BENCH_OUT)/bench.json.
BENCH_OUT      ?= out/bench
BENCH_DURATION ?= 1s
BENCH_ROUNDS   ?= 3
bench: deps build
	$(GO) test -run '^$$' -bench . -benchmem ./scheduler/ ./dataplane/header ./dataplane/parse ./dataplane/xmit \
		./dataplane/defrag ./dataplane/packetio ./topo/ipipd ./topo/impair ./reports/metrics
	$(GO) test -run '^$$' -bench 'NAT|Replay|Lookup10M' -benchmem ./dataplane/ ./dataplane/engine
	./$(BIN) bench --out $(BENCH_OUT) --duration $(BENCH_DURATION) --rounds $(BENCH_ROUNDS)

# fuzz runs every fuzz target for FUZZTIME each (go test fuzzes one target
# of one package at a time).
FUZZTIME ?= 30s
FUZZ_TARGETS := ./scheduler:FuzzSchedulers ./dataplane/parse:FuzzFrame ./dataplane/xmit:FuzzTransmit \
	./dataplane/engine:FuzzHandle ./dataplane/ipvsadm:FuzzRun ./dataplane/replay:FuzzParse \
	./scenarios:FuzzParse ./scenarios:FuzzExpectation ./loadgen:FuzzHTTPResponse ./topo/ipipd:FuzzDecap \
	./topo/ipipd:FuzzCoalesce ./dataplane/defrag:FuzzReassembly

fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
		echo "== $${t%%:*} $${t##*:}"; \
		$(GO) test -run '^$$' -fuzz "^$${t##*:}$$" -fuzztime $(FUZZTIME) "$${t%%:*}"; \
	done

clean:
	rm -rf bin
