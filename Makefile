# Private AI Guardian: the two commands are `make demo` and `make test`.
#
# Builds go to a cargo target dir outside the clone ($(GUARDIAN_CACHE)/target) so that fresh
# clones on the same machine (CI) reuse compiled dependencies. Everything runs the release
# profile: one build serves tests, benchmarks and the demo.

GUARDIAN_CACHE ?= /var/cache/private-ai-guardian
export GUARDIAN_CACHE
export CARGO_TARGET_DIR ?= $(GUARDIAN_CACHE)/target
CARGO ?= cargo
CARGO_FLAGS ?= --release --locked
# `cargo bench` builds with the bench profile (release settings) and refuses `--release`.
BENCH_FLAGS ?= --locked

.PHONY: demo demo-up test setup build lint unit web-test test-lib bench-build netsim netsim-matrix fuzz-check fuzz-build fuzz bench bench-seal bench-events bench-archive bench-detect bench-recall bench-cameras bench-stream bench-overlay bench-alerts bench-web radosgw-stop clean-cache

## demo: the product end to end (see README); demo-up leaves it running until Ctrl-C.
demo: setup build
	@scripts/demo.sh

demo-up: setup build
	@DEMO_UP=1 scripts/demo.sh

## test: every check CI runs: formatting, clippy, all tests, the benchmarks and the fuzz
## targets compile.
test: setup lint unit web-test bench-build fuzz-check

setup:
	@scripts/setup.sh

build:
	@echo "[build] cargo build (first time on a fresh machine: a few minutes)"
	$(CARGO) build $(CARGO_FLAGS) --workspace --bins

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy $(CARGO_FLAGS) --workspace --all-targets -- -D warnings

# The system tests (vm/, netsim/) run the release binaries: build them first. The netsim tests
# (namespaces, NATs) need root and skip, saying so, without it. The browser test
# (vm/tests/web.rs) fails here, instead of skipping, when chromium or web/node_modules is missing.
unit: export GUARDIAN_REQUIRE_BROWSER = 1
unit:
	$(CARGO) build $(CARGO_FLAGS) --workspace --bins
	$(CARGO) test $(CARGO_FLAGS) --workspace --no-fail-fast

## web-test: the web app's crypto modules (key derivation, age, manifest, credential, MP4) in
## node against objects made by the Rust code (the release `guardian` CLI).
web-test:
	scripts/setup.sh 70-web
	$(CARGO) build $(CARGO_FLAGS) -p guardian-client --bin guardian
	node --test web/test/

## test-lib: the unit tests of every crate (pure modules, time held by manual clocks,
## in-memory databases, no binaries): under a second of test time once built.
test-lib:
	$(CARGO) test $(CARGO_FLAGS) --workspace --lib

## netsim: only the network simulation: NAT self-test and the scenarios (root; a few minutes).
netsim: setup
	$(CARGO) build $(CARGO_FLAGS) --workspace --bins
	$(CARGO) test $(CARGO_FLAGS) -p guardian-netsim --no-fail-fast -- --nocapture

## netsim-matrix: print the relay + DCUtR matrix over every pair of NAT profiles.
netsim-matrix: setup
	$(CARGO) build $(CARGO_FLAGS) --workspace --bins
	$(CARGO_TARGET_DIR)/release/netsim matrix

# The benchmarks build with the flags their targets use (they run only by hand: make bench).
bench-build:
	$(CARGO) bench $(BENCH_FLAGS) --workspace --no-run

# The fuzz targets build with the stable toolchain for a type check; running them needs
# cargo-fuzz and nightly (make fuzz).
fuzz-check:
	CARGO_TARGET_DIR=$(GUARDIAN_CACHE)/fuzz-target $(CARGO) check --manifest-path fuzz/Cargo.toml --bins

fuzz-build:
	@scripts/fuzz.sh build

## fuzz: a run of every fuzz target (FUZZ_SECONDS each, default 30; or FUZZ_RUNS executions,
## such as FUZZ_RUNS=10000000; FUZZ_TARGETS to pick some).
fuzz:
	@scripts/fuzz.sh run

bench: bench-seal bench-events bench-archive bench-detect bench-recall bench-cameras bench-stream bench-overlay bench-alerts bench-web

## bench-seal: guardian seal + CID of a 256 MiB file against `age -r`, as a ratio.
bench-seal: setup build
	$(CARGO) bench $(BENCH_FLAGS) -p guardian-client --bench seal

## bench-events: edge -> vm event requests on loopback against a raw quinn request/response.
bench-events: setup build
	$(CARGO) bench $(BENCH_FLAGS) -p guardian-vm --bench events

## bench-archive: 100 sealed 8 MiB clips edge -> vm -> S3 against straight aws-sdk-s3 uploads.
bench-archive: setup build
	$(CARGO) bench $(BENCH_FLAGS) -p guardian-vm --bench archive

## bench-detect: detector latency against OpenVINO's benchmark_app (same model, same run),
## and throughput with one and with several inference requests.
bench-detect: setup build
	$(CARGO) bench $(BENCH_FLAGS) -p guardian-edge --bench detect

## bench-recall: person recall per appearance, time to event, false events per hour of empty
## scenes and detector CPU per camera, per model and threshold, on scenes composed from
## photographs (detections cached per frame, then the tracker replayed for each setting).
bench-recall: setup build
	$(CARGO) bench $(BENCH_FLAGS) -p guardian-edge --bench recall

## bench-cameras: edge CPU per camera for 1, 4, 8, 16 stand-in 1080p15 cameras, with and
## without a 640x360 detection substream.
bench-cameras: setup build
	$(CARGO) bench $(BENCH_FLAGS) -p guardian-edge --bench cameras

## bench-stream: remote playback in netsim on a 100 Mbit/s, +20 ms uplink: time to first byte,
## relayed and direct throughput as ratios against iperf3 on the same link (root).
bench-stream: setup build
	$(CARGO_TARGET_DIR)/release/netsim bench-stream

## bench-overlay: iperf3 over the WireGuard overlay (edge behind a NAT -> vm) on a 1 Gbit/s
## link in netsim, against the underlay and Debian's wireguard-go on the same two namespaces;
## the stream fallback (UDP blocked) on a 100 Mbit/s, +20 ms link against iperf3 over TCP (root).
bench-overlay: setup build
	$(CARGO_TARGET_DIR)/release/netsim bench-overlay

## bench-alerts: from the detector's hit to the webhook and the MQTT message, p50 and p99
## over 100 person events (stand-in cameras, edge behind a NAT, 20 ms round trip to the vm),
## against the event's own delivery to the vm (root).
bench-alerts: setup build
	$(CARGO_TARGET_DIR)/release/netsim bench-alerts

## bench-web: the owner's web app in headless chromium with 200 events: passphrase to the
## first 24 thumbnails (against Argon2id alone), a click to the first frame (against fetching
## the sealed clip), the bundle gzipped (vm/tests/web.rs bench_web, web/e2e/bench.mjs).
bench-web: setup build
	$(CARGO) test $(CARGO_FLAGS) -p guardian-vm --test web -- --ignored --nocapture bench_web

## radosgw-stop: stop the Ceph cluster the tests boot (it is reused while it runs).
radosgw-stop:
	@scripts/radosgw.sh stop

clean-cache:
	rm -rf $(GUARDIAN_CACHE)
