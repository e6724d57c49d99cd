# Purse: one command to run the server, one to run every test.
#   make serve   install into .venv and serve on the embedded PostgreSQL and Redis
#   make test    install into .venv and run the whole test suite (with the parity run)
#   make test-pure  the parity run alone: unit and integration tests on the plain Python
#   make test-deploy  build the image's wheels as deploy/Dockerfile does (about a minute)
#   make check   formatting, lint and strict typing (src, tests, benchmarks and examples)
#   make protos  regenerate the generated code (the contract's in clients/python/src/purse,
#                purse/store's in src/purse/store/v1), the descriptor set the OpenAPI
#                document is built from (src/purse/api/http/descriptors.binpb), and the typed
#                clients' modules from it (clients/python/src/purse/client/*v1.py)
#   make bench   the engine benchmarks (figures go into the README)
#   make bench-load  the load benchmark against a real server
#   make bench-soak  process-stream at half load for 10 minutes: the server's memory
#   make bench-price-list  UpsertGoods of 10,000 goods a call against a real server
#   make bench-export  ExportCustomers of 200,000 memberships against a real server
#   make bench-list  the customer list on a business of 1,000,000 members with history
#   make bench-bulk  a bulk credit to 100,000 customers, alone and while sales run
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# purse-client: the contract's generated code and the typed clients, a distribution of its own.
CLIENT := clients/python
LINTED := $(wildcard src tests benchmarks examples clients/python)
PROTO_FILES := $(wildcard protos/purse/v1/*.proto protos/purse/*/v1/*.proto)
# One generated package per proto package: purse.v1 (terminals), purse.admin.v1 …
PROTO_PACKAGES := $(sort $(patsubst protos/%/,%,$(dir $(PROTO_FILES))))
# The public contract (not purse/store) as a FileDescriptorSet with comments: the HTTP
# surface builds its OpenAPI document from it (src/purse/api/http/openapi.py).
PUBLIC_PROTO_FILES := $(filter-out protos/purse/store/%,$(PROTO_FILES))
STORE_PROTO_FILES := $(filter protos/purse/store/%,$(PROTO_FILES))
# The contract's generated code is purse-client's; purse/store's (how the server stores a
# receipt) stays the server's.
CLIENT_SOURCE := $(CLIENT)/src
CLIENT_MODULES := $(CLIENT_SOURCE)/purse/client
DESCRIPTORS := src/purse/api/http/descriptors.binpb
DESCRIPTOR_FLAGS := --include_imports --include_source_info
PROTOC := $(BIN)/python -m grpc_tools.protoc -Iprotos \
	--plugin=protoc-gen-mypy=$(BIN)/protoc-gen-mypy \
	--plugin=protoc-gen-mypy_grpc=$(BIN)/protoc-gen-mypy_grpc
# $(call protoc_to,DIRECTORY,FILES): messages, stubs and their type stubs.
protoc_to = $(PROTOC) --python_out=$(1) --grpc_python_out=$(1) --mypy_out=$(1) --mypy_grpc_out=$(1) $(2)
# $(call client_modules,DESCRIPTOR_SET,DIRECTORY): the typed clients' modules, formatted.
client_modules = modules=$$($(BIN)/python $(CLIENT)/generate.py $(1) $(2)) \
	&& $(BIN)/ruff check --quiet --select I --fix $$modules && $(BIN)/ruff format --quiet $$modules

.PHONY: serve test test-pure test-deploy node-tools prom-tools cluster-tools check protos \
	protos-check lint-protos breaking-protos reference-docs errors-docs bench bench-load bench-soak \
	bench-price-list bench-export bench-list bench-bulk load-tools proxy-tools clean install

install: $(STAMP)

# The modules setup.py compiles with mypyc: a change to them reinstalls.
COMPILED := src/purse/domain/records.py src/purse/domain/amounts.py \
	src/purse/domain/checks.py src/purse/domain/program.py src/purse/domain/engine.py \
	src/purse/domain/transactions.py src/purse/domain/settlement.py \
	src/purse/domain/customers.py src/purse/domain/pockets.py src/purse/domain/calculation.py

# The client distribution first: the server depends on it (purse-client), and pip finds
# it installed rather than looking for it in a registry.
$(STAMP): pyproject.toml setup.py $(COMPILED) $(CLIENT)/pyproject.toml
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11 or newer is required"'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e $(CLIENT)
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

serve: $(STAMP)
	$(BIN)/purse serve

test: $(STAMP) node-tools proxy-tools prom-tools cluster-tools
	$(BIN)/python -m pytest
	$(MAKE) test-pure

# The parity run: the modules setup.py compiles imported as the plain Python they are built
# from (tests/pure_python.py), so the same tests show both give the same results.
test-pure: $(STAMP) cluster-tools
	PURSE_PURE_PYTHON=1 $(BIN)/python -m pytest tests/unit tests/integration

# The image's install step, proven compiled without a container engine: the builder stage's
# sources built by its own step, deploy/build-wheels.sh (tests/integration/test_image_build.py).
test-deploy: $(STAMP)
	PURSE_IMAGE_BUILD=1 $(BIN)/python -m pytest tests/integration/test_image_build.py

check: $(STAMP) protos-check lint-protos breaking-protos
	$(BIN)/ruff format --check $(LINTED)
	$(BIN)/ruff check $(LINTED)
	$(BIN)/mypy
	$(BIN)/mypy tests/e2e/conftest.py  # a second `conftest`: see [tool.mypy] in pyproject.toml

protos: $(STAMP)
	for package in $(PROTO_PACKAGES); do for root in src $(CLIENT_SOURCE); do \
		rm -f $$root/$$package/*_pb2*.py $$root/$$package/*_pb2*.pyi; done; done
	$(call protoc_to,$(CLIENT_SOURCE),$(PUBLIC_PROTO_FILES))
	$(call protoc_to,src,$(STORE_PROTO_FILES))
	$(PROTOC) $(DESCRIPTOR_FLAGS) --descriptor_set_out=$(DESCRIPTORS) $(PUBLIC_PROTO_FILES)
	$(call client_modules,$(DESCRIPTORS),$(CLIENT_MODULES))

# Fails when the checked-in generated code does not match protos/.
protos-check: $(STAMP)
	rm -rf build/protos-check && mkdir -p build/protos-check/src build/protos-check/modules
	$(call protoc_to,build/protos-check/src,$(PROTO_FILES))
	for package in $(PROTO_PACKAGES); do \
		case $$package in purse/store/*) root=src;; *) root=$(CLIENT_SOURCE);; esac; \
		diff -r -x __init__.py -x __pycache__ -x py.typed build/protos-check/src/$$package $$root/$$package \
		|| { echo "$$root/$$package is stale: run 'make protos' and commit"; exit 1; }; done
	$(PROTOC) $(DESCRIPTOR_FLAGS) --descriptor_set_out=build/protos-check/descriptors.binpb \
		$(PUBLIC_PROTO_FILES)
	cmp -s build/protos-check/descriptors.binpb $(DESCRIPTORS) \
		|| { echo "$(DESCRIPTORS) is stale: run 'make protos' and commit"; exit 1; }
	$(call client_modules,build/protos-check/descriptors.binpb,build/protos-check/modules)
	for module in build/protos-check/modules/*.py; do \
		cmp -s $$module $(CLIENT_MODULES)/$${module##*/} \
		|| { echo "$(CLIENT_MODULES)/$${module##*/} is stale: run 'make protos' and commit"; exit 1; }; done

# docs/reference.md: the contract from the protos' comments (a unit test checks it is current).
reference-docs: $(STAMP)
	$(BIN)/python -m purse.api.http.reference_docs > docs/reference.md

lint-protos: $(STAMP)
	$(BIN)/buf lint

# The contract stays compatible (buf's FILE rules: no field, message or method removed,
# renamed or renumbered) with the newest release tag (v*), or with main before the first.
breaking-protos: $(STAMP)
	against=$$(git describe --tags --abbrev=0 --match 'v*' 2>/dev/null); \
	if [ -n "$$against" ]; then reference=".git#tag=$$against"; \
	else reference=".git#branch=main"; fi; \
	echo "buf breaking against $$reference"; \
	$(BIN)/buf breaking --against "$$reference"

# docs/errors.md: the error catalogue (a unit test checks it is current).
errors-docs: $(STAMP)
	$(BIN)/purse reasons --markdown > docs/errors.md

bench: $(STAMP)
	$(BIN)/python -m pytest benchmarks --benchmark-only -p no:randomly -o addopts=""

# Node.js and npm for the TypeScript client's end-to-end test (from Debian when missing).
node-tools:
	command -v npm >/dev/null || (apt-get update -qq && apt-get install -y -qq nodejs npm)

# nginx (Debian's) is the gRPC-aware proxy in front of several servers in
# tests/e2e/test_several_hosts.py, which runs nginx of its own (not the system service).
proxy-tools:
	command -v nginx >/dev/null || test -x /usr/sbin/nginx \
		|| (apt-get update -qq && apt-get install -y -qq nginx)

# promtool checks the alert rules in deploy/prometheus (tests/e2e/test_dashboards.py): taken
# from Debian's prometheus package into .venv/bin, since installing the package would also
# install and start a Prometheus server.
prom-tools: $(STAMP)
	test -x $(BIN)/promtool || command -v promtool >/dev/null || ( \
		unpacked=$$(mktemp -d) && cd $$unpacked && apt-get update -qq \
		&& apt-get download -qq prometheus 2>/dev/null \
		&& dpkg-deb --fsys-tarfile prometheus_*.deb | tar -x ./usr/bin/promtool \
		&& mv usr/bin/promtool $(CURDIR)/$(BIN)/promtool && rm -rf $$unpacked)

# redis-server (from Debian when missing) for the tests that run Purse on a real Redis
# Cluster: tests/redis_cluster.py starts three masters and their replicas on 127.0.0.1.
cluster-tools:
	command -v redis-server >/dev/null || (apt-get update -qq && apt-get install -y -qq redis-server)

# h2load (Debian's nghttp2-client) drives the throughput ceilings of the load benchmark.
load-tools:
	command -v h2load >/dev/null || (apt-get update -qq && apt-get install -y -qq nghttp2-client)

# The load benchmark: the empty-call ceiling, pgbench, Purse under load, and the stream
# against a business of 1,000,000 memberships (about 5 min).
bench-load: $(STAMP) load-tools
	mkdir -p build
	$(BIN)/python -m benchmarks.load.run --markdown build/bench-load.md

# The soak: process-stream's throughput, then 10 minutes at half of it, the server's RSS
# sampled every second (about 11 min).
bench-soak: $(STAMP)
	mkdir -p build
	$(BIN)/python -m benchmarks.load.run --workloads=process-stream --no-h2load --no-pgbench \
		--soak-seconds=600 --markdown build/bench-soak.md

# A price list through AdminService.UpsertGoods: create, update, unchanged (about 30 s).
bench-price-list: $(STAMP)
	$(BIN)/python -m benchmarks.price_list

# The customer list's CSV export over gRPC and HTTP, rows/s and the server's RSS (about
# half a minute; CUSTOMERS=1000000 for the issue's million, about two minutes).
CUSTOMERS ?= 200000
bench-export: $(STAMP)
	$(BIN)/python -m benchmarks.customer_export --customers $(CUSTOMERS)

# The customer list on a generated business of a million members: pages, counts and every
# sort through ListCustomers and CountCustomers (about 7 min, 7 GB of disk; BENCH_LIST_DIR
# keeps the data directory and its business for the next run).
bench-list: $(STAMP)
	mkdir -p build
	$(BIN)/python -m benchmarks.customer_list --markdown build/bench-list.md \
		$(if $(BENCH_LIST_DIR),--data-dir $(BENCH_LIST_DIR))

# A bulk credit of special points to 100,000 customers, alone and while a steady load of
# sales runs: customers/s and the sales' p99 against their p99 alone (about 2 min).
bench-bulk: $(STAMP)
	mkdir -p build
	$(BIN)/python -m benchmarks.bulk.run --markdown build/bench-bulk.md

clean:
	rm -rf $(VENV) build .pytest_cache .mypy_cache .ruff_cache
