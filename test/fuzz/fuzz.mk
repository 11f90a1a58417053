# libFuzzer harnesses of every parser (test/fuzz/fuzz_*.c): the peer
# channel's, the log's Command, a queue stream's Receive answers, Raft
# message, WAL and snapshot codecs, the REST router, query-string and body
# parsers, the stream position parsers (from, RFC 3339 times,
# Last-Event-ID), the JWT parsing and receipts, built with
# clang -fsanitize=fuzzer,address,undefined from the sources they need (plus
# the nanopb code, generated into $(BUILD)/proto as the main Makefile does). `fuzz-run` runs each for FUZZ_SECONDS on its seed corpus in
# test/fuzz/corpus/<harness>/ (read only; new inputs go to
# $(BUILD)/corpus/<harness>/) and fails on the first crash, leak or timeout;
# a crashing input is left as $(BUILD)/crash-<harness>-*.
# Called by the top Makefile: make fuzz [FUZZ_SECONDS=60] (CI: 30).
# SPDX-License-Identifier: MIT

BUILD        ?= build-fuzz
FUZZ_SECONDS ?= 60
FUZZ_CC      ?= clang
FUZZ_FLAGS   := -std=c11 -D_GNU_SOURCE -DPB_ENABLE_MALLOC -g -O1 -I. -I$(BUILD) \
                -Wall -Wextra -Werror -fno-omit-frame-pointer \
                -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
HARNESSES    := $(patsubst test/fuzz/%.c,%,$(wildcard test/fuzz/fuzz_*.c))
BINS         := $(HARNESSES:%=$(BUILD)/%)

# Sources and libraries each harness needs.
SRC_fuzz_h2frame := replication/h2frame.c common/err.c
SRC_fuzz_headers := replication/h2conn.c replication/h2frame.c common/err.c
SRC_fuzz_h2conn  := replication/h2conn.c replication/h2frame.c common/err.c
SRC_fuzz_grpcmsg := replication/grpcmsg.c common/err.c $(BUILD)/proto/mom.pb.c
SRC_fuzz_command := broker/command.c common/err.c $(BUILD)/proto/mom.pb.c
SRC_fuzz_members := replication/peer_members.c common/err.c
SRC_fuzz_peer_token := replication/peer_token.c broker/cluster_token.c broker/jws.c common/err.c \
                       common/log.c common/number.c common/base64.c
SRC_fuzz_wal     := replication/wal.c common/crc32c.c common/err.c common/log.c
SRC_fuzz_snapshot := broker/store.c broker/store_queue.c broker/store_topic.c \
                     broker/store_acl.c broker/store_snapshot.c broker/render.c broker/reply.c \
                     broker/command.c broker/api_error.c broker/router.c broker/receipt.c \
                     common/fsutil.c \
                     common/hashmap.c common/siphash.c common/heap.c common/strtab.c \
                     common/crc32c.c common/err.c common/log.c common/clock.c \
                     $(BUILD)/proto/mom.pb.c
SRC_fuzz_qcredit := broker/qcredit.c $(SRC_fuzz_snapshot)
SRC_fuzz_node_wire := replication/node_wire.c common/err.c $(BUILD)/proto/mom.pb.c
SRC_fuzz_base64  := common/base64.c common/err.c
SRC_fuzz_router  := broker/router.c
SRC_fuzz_query   := broker/http_parse.c broker/stream_params.c broker/router.c broker/api_error.c common/number.c \
                    common/base64.c common/err.c broker/command.c $(BUILD)/proto/mom.pb.c
SRC_fuzz_http_body := broker/http_parse.c broker/stream_params.c broker/router.c broker/api_error.c common/number.c \
                      common/base64.c common/err.c broker/command.c $(BUILD)/proto/mom.pb.c
SRC_fuzz_jws     := broker/jws.c common/err.c common/log.c common/number.c common/base64.c
SRC_fuzz_stream_params := broker/stream_params.c common/clock.c
SRC_fuzz_receipt := broker/receipt.c common/fsutil.c common/err.c
SRC_fuzz_hard_state := replication/hard_state.c common/crc32c.c common/err.c
LIB_fuzz_headers := -lnghttp2
LIB_fuzz_h2conn  := -lnghttp2
LIB_fuzz_grpcmsg := -l:libprotobuf-nanopb.a
LIB_fuzz_command := -l:libprotobuf-nanopb.a
LIB_fuzz_peer_token := -ljwt -lcjson -lcrypto
LIB_fuzz_node_wire := -l:libprotobuf-nanopb.a
LIB_fuzz_snapshot := -l:libprotobuf-nanopb.a -lcjson -lcrypto
LIB_fuzz_qcredit := $(LIB_fuzz_snapshot)
LIB_fuzz_base64  := -lcrypto
LIB_fuzz_query := -lcjson -lcrypto -l:libprotobuf-nanopb.a
LIB_fuzz_http_body := -lcjson -lcrypto -l:libprotobuf-nanopb.a
LIB_fuzz_jws := -ljwt -lcjson -lcrypto
LIB_fuzz_receipt := -lcrypto

.PHONY: fuzz-build fuzz-run
fuzz-build: $(BINS)

$(BUILD)/proto/mom.pb.c $(BUILD)/proto/mom.pb.h: proto/mom.proto proto/mom.options
	@mkdir -p $(BUILD)/proto
	protoc --plugin=protoc-gen-nanopb=/usr/bin/protoc-gen-nanopb -Iproto \
	  --nanopb_opt=-Iproto --nanopb_out=$(BUILD)/proto proto/mom.proto

.SECONDEXPANSION:
$(BUILD)/fuzz_%: test/fuzz/fuzz_%.c $$(SRC_fuzz_$$*) | $(BUILD)/proto/mom.pb.h
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_FLAGS) -o $@ $< $(SRC_fuzz_$*) $(LIB_fuzz_$*)

fuzz-run: fuzz-build
	@set -e; for h in $(HARNESSES); do \
	  mkdir -p $(BUILD)/corpus/$$h test/fuzz/corpus/$$h; \
	  echo "== $$h: $(FUZZ_SECONDS) s"; \
	  $(BUILD)/$$h -max_total_time=$(FUZZ_SECONDS) -timeout=10 -rss_limit_mb=2048 \
	    -max_len=65536 -print_final_stats=1 -artifact_prefix=$(BUILD)/crash-$$h- \
	    $(BUILD)/corpus/$$h test/fuzz/corpus/$$h 2>$(BUILD)/$$h.log \
	  || { tail -n 60 $(BUILD)/$$h.log; echo "fuzz: $$h FAILED (log $(BUILD)/$$h.log)"; exit 1; }; \
	  grep -E '^(#[0-9]+.*DONE|stat::number_of_executed_units)' $(BUILD)/$$h.log | tail -n 2; \
	done; echo "fuzz: all harnesses ran $(FUZZ_SECONDS) s without a crash"
