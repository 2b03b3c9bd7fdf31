# flowhound — see README.md. Every target works on a fresh Debian machine
# with Go and make; `deps` installs the Debian tools the tests compare with.

GO       ?= go
BIN      := bin/flowhound
PGO      := $(CURDIR)/cmd/flowhound/default.pgo
PCAP     ?= testdata/test-cc-capture-1.pcap.gz
HOME_NET ?= 147.32.0.0/16
FUZZTIME ?= 30s
# Debian packages the tests (tshark) and the benchmark (peers) use.
TEST_DEBS  := tshark kcat tcpdump iproute2
BENCH_DEBS := softflowd nfdump argus-server bc

.PHONY: build run test lint deps devbins dev dev-stop bench-deps fuzz golden bench pgo eval clean

build:
	$(GO) build -o $(BIN) ./cmd/flowhound

## run: replay the bundled beacon capture through sensor and detectors: findings
## as JSON lines on stdout, a summary with the top findings on stderr
run: build
	$(BIN) replay --home-net $(HOME_NET) $(PCAP)

## test: format and vet checks, then every test (fuzz seed corpora included);
## the sink tests start a real Kafka broker and InfluxDB on loopback
test: deps devbins lint
	$(GO) test -count=1 ./...

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './.cache/*')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

# deps installs missing Debian packages when it can (root with apt-get);
# otherwise it says what is missing and the tests that need it skip.
deps:
	@./scripts/debs.sh $(TEST_DEBS)

## devbins: build (once, cached in .bin/) the Kafka broker and InfluxDB 1.8.10
## the sink tests run against
devbins:
	./scripts/devservices.sh build

## dev: start Kafka and InfluxDB on loopback; then eval "$$(scripts/devservices.sh env)"
dev:
	./scripts/devservices.sh start
	@./scripts/devservices.sh env

dev-stop:
	./scripts/devservices.sh stop

bench-deps:
	@./scripts/debs.sh $(BENCH_DEBS)

## fuzz: run every fuzz target for FUZZTIME each
fuzz:
	@for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 3s $$pkg || exit 1; \
	  done; \
	done

## golden: regenerate capture/testdata/golden from tshark
golden: deps
	$(GO) test ./capture -run TestGolden -count=1 -update

## bench: go benchmarks of the hot paths, then flowhound against softflowd,
## nfpcapd and argus on the same synthetic 2 M-packet capture
## (the Go benchmarks are compiled with the binary's profile, see pgo)
bench: build bench-deps
	GOMAXPROCS=1 $(GO) test -pgo=$(PGO) -run '^$$' -bench . -benchmem ./capture/ ./flow/
	GOMAXPROCS=1 $(GO) test -pgo=$(PGO) -run '^$$' -bench 'Engine|Memory' -benchmem ./detect/ ./detect/eval/
	$(GO) test -run '^$$' -bench 'KafkaFlows|InfluxPoints' -benchtime 200000x ./sinks/
	./scripts/bench.sh

## pgo: regenerate cmd/flowhound/default.pgo, the profile that go build
## optimises the binary with (from flows on the bench capture and the engine)
pgo:
	./scripts/pgo.sh

## eval: score the detectors on generated scenarios (3 profiles x 3 seeds), the
## beacon sweep and the real captures; writes docs/eval.md
eval: build
	$(BIN) eval suite --out docs/eval.md --commit $$(git rev-parse --short HEAD 2>/dev/null || echo unknown)

clean:
	rm -rf bin .cache
