# mom: one non-recursive Makefile for the broker, its tests and tools.
# `make` builds build/momd; `make test` / `make asan` run every test;
# `make deps` installs the Debian packages of every purpose (deps-build,
# deps-test, deps-fuzz, deps-bench: each target pulls only its own).
# SPDX-License-Identifier: MIT

BUILD     ?= build
CC        ?= cc
SANITIZER ?=
OPT       ?= -O2
PYTHON    := /usr/bin/python3

WARN   := -Wall -Wextra -Wshadow -Wvla -Wstrict-prototypes -Wmissing-prototypes \
          -Wformat=2 -Werror
STRICT := -Wconversion -Wsign-conversion
CFLAGS_ALL := -std=c11 -D_GNU_SOURCE -DPB_ENABLE_MALLOC $(OPT) -g $(WARN) \
          -I. -I$(BUILD) -isystem /usr/include/evhtp -pthread $(EXTRA_CFLAGS)
ifneq ($(SANITIZER),)
CFLAGS_ALL += -fsanitize=$(SANITIZER) -fno-omit-frame-pointer -fno-sanitize-recover=undefined \
              -DMOM_CHECK_LOCAL_APPLY
LDSAN      := -fsanitize=$(SANITIZER)
endif
LDLIBS := -levhtp -levent -levent_pthreads -ljwt -lcjson -lnghttp2 -lssl -lcrypto \
          -l:libprotobuf-nanopb.a -pthread -lm
# momd and the bench baseline allocate through jemalloc: with 64 requests in
# flight glibc's per-thread cache (7 blocks a size) spills and perf showed a
# third of the loop in malloc (README, Benchmarks). Sanitizer builds keep
# their own allocator.
MALLOC_LIB := $(if $(SANITIZER),,-ljemalloc)

# Debian packages, by purpose: `make run` installs only DEPS_BUILD (no
# clang, no wrk); `make test` adds DEPS_TEST (cmocka, pytest and its
# clients, clang-format for fmt-check, the browser tests' chromium, the
# /metrics and OpenAPI checks' parsers), `make fuzz` DEPS_FUZZ (clang and
# its libFuzzer runtime), `make bench` DEPS_BENCH (and DEPS_REDIS); `make deps` installs
# them all.
DEPS_BUILD := make gcc libc6-dev pkg-config libevent-dev libevhtp-dev libssl-dev libonig-dev \
              nanopb libnanopb-dev protobuf-compiler libjwt-dev libcjson-dev \
              libnghttp2-dev libjemalloc-dev
DEPS_TEST  := libcmocka-dev python3-pytest python3-requests python3-grpcio python3-jwt \
              python3-protobuf python3-cryptography python3-prometheus-client python3-yaml \
              python3-jsonschema clang-format curl procps chromium chromium-driver \
              python3-selenium libfaketime
DEPS_FUZZ  := clang libclang-rt-14-dev
DEPS_BENCH := wrk python3-requests python3-jwt python3-cryptography procps
# `make bench` and `make bench-peers` also (Redis's durable LPUSH beside the
# durable publish; not in `make deps`: its package starts a server)
DEPS_REDIS := redis-server redis-tools
# `make bench-peers` also (rabbitmq-server on its own line: optional)
DEPS_PEERS := nginx-light python3-fastapi uvicorn python3-uvloop python3-httptools

PROTO_SRC := proto/mom.proto
PROTO_C   := $(BUILD)/proto/mom.pb.c
PROTO_H   := $(BUILD)/proto/mom.pb.h

COMMON_SRC := $(wildcard common/*.c)
REPL_SRC   := $(wildcard replication/*.c)
BROKER_SRC := $(filter-out broker/main.c,$(wildcard broker/*.c))
LIB_OBJ    := $(COMMON_SRC:%.c=$(BUILD)/%.o) $(REPL_SRC:%.c=$(BUILD)/%.o) \
              $(BROKER_SRC:%.c=$(BUILD)/%.o) $(BUILD)/proto/mom.pb.o \
              $(BUILD)/broker/ui_assets.o
LIBMOM     := $(BUILD)/libmom.a

UNIT_SRC   := $(wildcard test/unit/test_*.c)
UNIT_BIN   := $(UNIT_SRC:test/unit/%.c=$(BUILD)/test/%)
SIM_SRC    := $(wildcard test/sim/*.c)
SIM_BIN    := $(if $(SIM_SRC),$(BUILD)/test/sim_raft)
BENCH_SRC  := $(wildcard test/bench/*.c)
BENCH_BIN  := $(BENCH_SRC:test/bench/%.c=$(BUILD)/bench/%)

# keep objects of test binaries between runs
.SECONDARY:

.PHONY: all run test unit sim integration asan fuzz bench bench-peers chaos cluster deps deps-build deps-test \
        deps-fuzz deps-bench deps-check fmt fmt-check clean demo demo-down demo-clean test-demo \
        install
all: $(BUILD)/momd

$(PROTO_C) $(PROTO_H): $(PROTO_SRC) proto/mom.options
	@mkdir -p $(BUILD)/proto
	protoc --plugin=protoc-gen-nanopb=/usr/bin/protoc-gen-nanopb -Iproto \
	  --nanopb_opt=-Iproto --nanopb_out=$(BUILD)/proto $(PROTO_SRC)

$(BUILD)/proto/mom.pb.o: $(PROTO_C)
	$(CC) $(CFLAGS_ALL) $(STRICT) -c $< -o $@

$(BUILD)/common/%.o: common/%.c | $(PROTO_H)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_ALL) $(STRICT) -MMD -MP -c $< -o $@
$(BUILD)/replication/%.o: replication/%.c | $(PROTO_H)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_ALL) $(STRICT) -MMD -MP -c $< -o $@
$(BUILD)/broker/%.o: broker/%.c | $(PROTO_H)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_ALL) -MMD -MP -c $< -o $@
$(BUILD)/test/%.o: test/%.c | $(PROTO_H)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_ALL) -Wno-missing-prototypes -MMD -MP -c $< -o $@

# The dashboard (broker/ui/) is compiled in: a host tool turns each file
# into a byte array with its URL, Content-Type and ETag (URL=FILE=TYPE).
UI_ASSETS := /=broker/ui/index.html=text/html;charset=utf-8 \
             /ui/app.js=broker/ui/app.js=text/javascript;charset=utf-8 \
             /ui/app.css=broker/ui/app.css=text/css;charset=utf-8 \
             /favicon.svg=broker/ui/favicon.svg=image/svg+xml
UI_FILES  := $(foreach a,$(UI_ASSETS),$(word 2,$(subst =, ,$(a))))

$(BUILD)/tools/ui_embed: broker/ui/embed.c
	@mkdir -p $(@D)
	$(CC) -std=c11 -O1 $(WARN) -o $@ $<

$(BUILD)/broker/ui_assets.c: $(BUILD)/tools/ui_embed $(UI_FILES) Makefile
	@mkdir -p $(@D)
	$(BUILD)/tools/ui_embed $@ $(foreach a,$(UI_ASSETS),'$(a)')

$(BUILD)/broker/ui_assets.o: $(BUILD)/broker/ui_assets.c
	$(CC) $(CFLAGS_ALL) -c $< -o $@

$(LIBMOM): $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/momd: $(BUILD)/broker/main.o $(LIBMOM)
	$(CC) $(LDSAN) -o $@ $^ $(LDLIBS) $(MALLOC_LIB)

$(BUILD)/test/test_%: $(BUILD)/test/unit/test_%.o $(LIBMOM)
	$(CC) $(LDSAN) -o $@ $^ -lcmocka $(LDLIBS)

$(BUILD)/test/sim_raft: $(SIM_SRC:test/%.c=$(BUILD)/test/%.o) $(LIBMOM)
	$(CC) $(LDSAN) -o $@ $^ $(LDLIBS)

$(BUILD)/bench/%: test/bench/%.c $(LIBMOM)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_ALL) -Wno-missing-prototypes -o $@ $^ $(LDLIBS) $(MALLOC_LIB)

# For `make bench` only: momd without the per-request metrics updates
# (server.c built with -DMOM_METRICS_OFF; the linker takes this server.o
# instead of the archive's), to measure what the updates cost.
$(BUILD)/bench/server_nometrics.o: broker/server.c | $(PROTO_H)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_ALL) -DMOM_METRICS_OFF -c $< -o $@
$(BUILD)/bench/momd_nometrics: $(BUILD)/broker/main.o $(BUILD)/bench/server_nometrics.o $(LIBMOM)
	$(CC) $(LDSAN) -o $@ $^ $(LDLIBS) $(MALLOC_LIB)

# For the clock-jump fault only: momd on glibc's malloc, because libfaketime
# cannot be preloaded into a program linked with jemalloc (its start-up
# recurses through jemalloc's clock_gettime).
$(BUILD)/chaos/momd_libc_malloc: $(BUILD)/broker/main.o $(LIBMOM)
	@mkdir -p $(@D)
	$(CC) $(LDSAN) -o $@ $^ $(LDLIBS)

# The power-loss interposer of the fault tests (LD_PRELOAD; test/chaos/powercut.c)
$(BUILD)/powercut.so: test/chaos/powercut.c
	@mkdir -p $(@D)
	$(CC) -std=gnu11 -O2 $(WARN) -fPIC -shared -o $@ $< -ldl -lpthread

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)

# ---- running ----
run: deps-build $(BUILD)/momd
	exec $(BUILD)/momd

# ---- tests ----
unit: $(UNIT_BIN)
	@set -e; for t in $(UNIT_BIN); do echo "== $$t"; $$t; done

sim: $(SIM_BIN)
	@set -e; if [ -n "$(SIM_BIN)" ]; then $(SIM_BIN) --seeds $${SIM_SEEDS:-10000}; fi

integration: $(BUILD)/momd $(BUILD)/powercut.so
	MOMD=$(abspath $(BUILD)/momd) POWERCUT_LIB=$(abspath $(BUILD)/powercut.so) $(PYTHON) -m pytest -q -p no:cacheprovider --basetemp=$(abspath $(BUILD))/pytest test/integration

test: deps-test
	@$(MAKE) --no-print-directory all unit sim integration

asan:
	@$(MAKE) --no-print-directory BUILD=build-asan OPT=-O1 SANITIZER=address,undefined \
	  all unit sim integration SIM_SEEDS=$${SIM_SEEDS:-2000}

FUZZ_SECONDS ?= 60
fuzz: deps-fuzz
	@$(MAKE) --no-print-directory -f test/fuzz/fuzz.mk BUILD=build-fuzz FUZZ_SECONDS=$(FUZZ_SECONDS) fuzz-run

bench: deps-bench
	$(call install_debs,$(DEPS_REDIS))
	@$(MAKE) --no-print-directory all $(BENCH_BIN) $(BUILD)/bench/momd_nometrics
	$(PYTHON) test/bench/run_bench.py --momd $(abspath $(BUILD)/momd) --bench-dir $(abspath $(BUILD)/bench) \
	  $(BENCH_ARGS)

# momd beside Redis, nginx, FastAPI + uvicorn and RabbitMQ's HTTP API, all from
# Debian, pinned the same way (test/bench/bench_peers.py; BENCH_PEERS_ARGS
# passes options, e.g. --duration 5). RabbitMQ is skipped with a note when
# it cannot be installed or started.
bench-peers: deps-bench
	$(call install_debs,$(DEPS_REDIS) $(DEPS_PEERS))
	-$(call install_debs,rabbitmq-server)
	@$(MAKE) --no-print-directory all $(BENCH_BIN)
	$(PYTHON) test/bench/bench_peers.py --momd $(abspath $(BUILD)/momd) \
	  --bench-dir $(abspath $(BUILD)/bench) $(BENCH_PEERS_ARGS)

# Fault runs on real clusters (test/chaos/run.py says what is checked):
# CHAOS_SECONDS of faults per scenario, CHAOS_SEED (default: the time,
# printed), CHAOS_ARGS (e.g. --ci for the short run's scenarios, --scenario X).
chaos: deps-test $(BUILD)/momd $(BUILD)/powercut.so $(BUILD)/chaos/momd_libc_malloc
	MOMD=$(abspath $(BUILD)/momd) POWERCUT_LIB=$(abspath $(BUILD)/powercut.so) $(PYTHON) -m pytest \
	    -q -p no:cacheprovider --basetemp=$(abspath $(BUILD))/chaos-pytest test/chaos/
	MOMD=$(abspath $(BUILD)/momd) POWERCUT_LIB=$(abspath $(BUILD)/powercut.so) \
	    MOMD_LIBC_MALLOC=$(abspath $(BUILD)/chaos/momd_libc_malloc) $(PYTHON) test/chaos/run.py --seconds $${CHAOS_SECONDS:-60} \
	    $${CHAOS_SEED:+--seed $$CHAOS_SEED} --workdir $(abspath $(BUILD))/chaos $${CHAOS_ARGS:-}

cluster: deps-build $(BUILD)/momd
	deploy/local-cluster.sh start $${CLUSTER_DIR:-$(abspath $(BUILD)/cluster)}

# ---- containers (deploy/demo.sh says what each step does) ----
demo:
	deploy/demo.sh up
demo-down:
	deploy/demo.sh down
demo-clean:
	deploy/demo.sh clean
# Builds the image and runs the demo cluster in Docker (root; skipped otherwise).
test-demo:
	@if [ "$$(id -u)" != 0 ]; then echo "test-demo: skipped, needs root (Docker)"; exit 0; fi; \
	dpkg-query -W -f='$${Status}' python3-pytest 2>/dev/null | grep -q "ok installed" || \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-pytest python3-requests; }; \
	$(PYTHON) -m pytest -q -p no:cacheprovider -rsP test/deploy

# ---- installing without containers ----
PREFIX  ?= /usr/local
DESTDIR ?=
install: $(BUILD)/momd
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)/etc/mom $(DESTDIR)/lib/systemd/system
	install -m 0755 $(BUILD)/momd $(DESTDIR)$(PREFIX)/bin/momd
	sed 's|@PREFIX@|$(PREFIX)|g' deploy/mom.service >$(DESTDIR)/lib/systemd/system/mom.service
	chmod 0644 $(DESTDIR)/lib/systemd/system/mom.service
	[ -e $(DESTDIR)/etc/mom/mom.env ] || install -m 0600 deploy/mom.env.example $(DESTDIR)/etc/mom/mom.env
	@echo "installed $(DESTDIR)$(PREFIX)/bin/momd and mom.service; edit /etc/mom/mom.env, then:"
	@echo "  useradd --system --home-dir /var/lib/mom mom && systemctl enable --now mom"

# ---- setup ----
# Installs the packages of $(1) that are missing (as root; else prints the
# apt-get line and fails).
define install_debs
	@missing=""; for p in $(1); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	  else \
	    echo "missing packages; run: sudo apt-get update && sudo apt-get install -y$$missing"; exit 1; \
	  fi; \
	fi
endef

deps-build:
	$(call install_debs,$(DEPS_BUILD))
deps-test:
	$(call install_debs,$(DEPS_BUILD) $(DEPS_TEST))
deps-fuzz:
	$(call install_debs,$(DEPS_BUILD) $(DEPS_FUZZ))
deps-bench:
	$(call install_debs,$(DEPS_BUILD) $(DEPS_BENCH))
deps:
	$(call install_debs,$(DEPS_BUILD) $(DEPS_TEST) $(DEPS_FUZZ) $(DEPS_BENCH))

# The dependency arrows (docs/architecture.md): common -> libc and OpenSSL
# only, replication -> common + proto (the JWT verifier comes in as
# node_token_ops callbacks), broker -> replication through node.h only
# (main.c included), only broker/ may include broker/.
deps-check:
	@! grep -n '#include "\(replication\|broker\)/' common/*.[ch] || { echo "common/ must not include replication/ or broker/"; exit 1; }
	@! grep -n '#include [<"]\(event2/\|evhtp\|jwt\.h\|cjson/\|pb\.h\|pb_\|nanopb\|nghttp2\|proto/\)' common/*.[ch] || { echo "common/ uses libc and OpenSSL only"; exit 1; }
	@! grep -n '#include "broker/' replication/*.[ch] || { echo "replication/ must not include broker/"; exit 1; }
	@! grep -n '#include "replication/' broker/*.[ch] | grep -v '#include "replication/node\.h"' || { echo "broker/ reaches replication/ only through replication/node.h"; exit 1; }
	@! grep -rn '#include "test/\|#include ".*main.c"' common replication broker || { echo "nothing includes test/ or main.c"; exit 1; }
	@echo "deps-check: ok"

fmt:
	clang-format -i $$(git ls-files '*.c' '*.h')

# Fails when any tracked C file differs from what `make fmt` would write.
fmt-check:
	@clang-format --dry-run -Werror $$(git ls-files '*.c' '*.h') && echo "fmt-check: ok"

clean:
	rm -rf build build-asan build-fuzz
