# factory2: build, test and run. `make help` lists the targets.
#
# Real-Kafka targets use deploy/kafka/kafka.sh: a single KRaft broker on
# 127.0.0.1:29092, a three-broker cluster on 127.0.0.1:29192,29292,29392.

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

GO ?= go
KAFKA := deploy/kafka/kafka.sh

.PHONY: help
help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  %-18s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: build
build: ## Build bin/factory2
	$(GO) build -o bin/factory2 ./cmd/factory2

.PHONY: deps
deps: ## Install missing tools (Java 17, Maven, gcc), Go modules and the Kafka jars
	deploy/deps.sh

.PHONY: vet
vet: ## go vet, and fail listing any Go file that gofmt would change
	$(GO) vet ./...
	cd deploy/check && $(GO) vet ./...
	@unformatted="$$(git ls-files --cached --others --exclude-standard -- '*.go' ':!:*testdata/*' | \
		while read -r f; do [ ! -e "$$f" ] || echo "$$f"; done | xargs -r gofmt -l)"; \
	if [ -n "$$unformatted" ]; then echo "gofmt -w needed on:"; echo "$$unformatted"; exit 1; fi

.PHONY: test-unit
test-unit: ## Unit tests with -race on in-process kfake (-short; real-broker tests skip)
	env -u FACTORY2_KAFKA_BROKERS -u FACTORY2_REQUIRE_KAFKA $(GO) test -race -count=1 -short ./...

.PHONY: test
test: deps vet ## Full suite for CI: unit and integration tests against a real broker
	deploy/test.sh

.PHONY: chaos
chaos: deps ## Broker fault tests with minute-long outages, 3 runs each (CHAOS_COUNT); recovery times
	deploy/chaos.sh

.PHONY: bench
bench: deps ## Run the benchmarks against the real broker, the Kafka Streams peer included (BENCH=regexp, BENCHTIME=..., COUNT=n)
	deploy/bench.sh "$(or $(BENCH),.)"

.PHONY: demo
demo: build ## Build bin/factory2 and run the sample on the embedded broker: decisions as they are made (Ctrl-C stops)
	bin/factory2 dev --sample

.PHONY: kafka-up
kafka-up: ## Start the single test broker (127.0.0.1:29092) if not running
	$(KAFKA) fetch
	$(KAFKA) up

.PHONY: kafka-up-cluster
kafka-up-cluster: ## Start the three-broker test cluster if not running
	$(KAFKA) fetch
	$(KAFKA) up-cluster

.PHONY: kafka-up-secure
kafka-up-secure: ## Start the secured test broker (TLS, SCRAM, ACLs; 127.0.0.1:29492) if not running
	$(KAFKA) fetch
	$(KAFKA) up-secure

.PHONY: kafka-down
kafka-down: ## Stop the test brokers this tree started
	$(KAFKA) down

.PHONY: kafka-status
kafka-status: ## Show which test brokers run
	$(KAFKA) status
