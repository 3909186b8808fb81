# Gatehouse — the two commands a newcomer needs are `make run` and `make test`.
GO       ?= go
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -s -w -X github.com/gatehousehq/gatehouse/internal/version.Version=$(VERSION)
PKGS     := ./...
TESTFLAGS ?= -count=1 -timeout 10m

.PHONY: run test fuzz build generate check-generated lint bench migration clean

## run: start the controller on its embedded defaults (SQLite in ./data, http://127.0.0.1:8080)
run:
	$(GO) run -ldflags "$(LDFLAGS)" ./controller/cmd/gatehouse serve

## test: vet, check generated code, a bounded fuzz run, then every test (real nginx, sshd, Glances, PostgreSQL, Chromium)
test: check-generated
	$(GO) vet $(PKGS)
	$(MAKE) --no-print-directory fuzz
	$(GO) test $(TESTFLAGS) $(PKGS)

## fuzz: fuzz the validators and renderers that stand between user input and nginx
# Each target runs a fixed number of inputs (about ten seconds each here) rather than a duration: a
# duration-bounded fuzz run on Go 1.26 can fail with a bare "context deadline exceeded" when the time runs
# out (a race in the fuzzing coordinator, golang/go#75804, fixed in Go 1.27). FUZZTIME=30s or FUZZTIME=1000x
# overrides every target's budget.
FUZZTIME ?=
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzValidateDomain$$' -fuzztime $(or $(FUZZTIME),150000x) ./controller/internal/nginxconf/
	$(GO) test -run '^$$' -fuzz '^FuzzRender$$' -fuzztime $(or $(FUZZTIME),150000x) ./controller/internal/nginxconf/
	$(GO) test -run '^$$' -fuzz '^FuzzQuoteArg$$' -fuzztime $(or $(FUZZTIME),200000x) ./controller/internal/nginxconf/
	$(GO) test -run '^$$' -fuzz '^FuzzReleaseValidate$$' -fuzztime $(or $(FUZZTIME),250000x) ./agent/internal/nginx/
	$(GO) test -run '^$$' -fuzz '^FuzzQuote$$' -fuzztime $(or $(FUZZTIME),4000x) ./controller/internal/provision/shellquote/
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(or $(FUZZTIME),600000x) ./internal/nginxstatus/

## build: controller and agent binaries in bin/, agent builds for linux/amd64 and linux/arm64 in dist/
build:
	mkdir -p bin dist
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o bin/gatehouse ./controller/cmd/gatehouse
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o bin/gatehouse-agent ./agent/cmd/gatehouse-agent
	for arch in amd64 arm64; do \
		CGO_ENABLED=0 GOOS=linux GOARCH=$$arch $(GO) build -trimpath -ldflags "$(LDFLAGS)" \
			-o dist/gatehouse-agent-linux-$$arch ./agent/cmd/gatehouse-agent || exit 1; \
	done

## generate: regenerate ent code and protobuf code (commit the result)
generate:
	$(GO) generate ./ent
	cd proto && $(GO) tool buf generate

## check-generated: fail when committed generated code differs from what the sources produce
check-generated: generate
	@if [ -n "$$(git status --porcelain -- ent proto/gen)" ]; then \
		git status --porcelain -- ent proto/gen; \
		echo "generated code is out of date: run make generate and commit the result"; exit 1; \
	fi
	$(GO) run ./controller/internal/store/migrategen -check

## migration: write the next migration for both dialects after an ent schema change (NAME=what_changed)
migration:
	@test -n "$(NAME)" || (echo "usage: make migration NAME=what_changed" && exit 2)
	$(GO) run ./controller/internal/store/migrategen $(NAME)

## lint: formatting, vet and protobuf lint
lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go' | grep -v '^ent/' | grep -v '^proto/gen/'))" || (gofmt -l $$(git ls-files '*.go' | grep -v '^ent/' | grep -v '^proto/gen/'); exit 1)
	$(GO) vet $(PKGS)
	cd proto && $(GO) tool buf lint

## bench: the benchmarks behind docs/BENCHMARKS.md (QUICK=1 for a short run)
bench:
	bash scripts/bench.sh
	$(GO) test -run '^$$' -bench . -benchmem -count=1 -timeout 30m ./controller/internal/nginxconf ./controller/internal/deploy ./agent/internal/nginx ./agent/internal/metrics

clean:
	rm -rf bin dist
