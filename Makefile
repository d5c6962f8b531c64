# visits: two commands for a newcomer, `make run` and `make test`.
# Both install missing Debian packages first (scripts/deps.sh), then check that every
# program, helper and module their suites need resolves (scripts/check-setup.sh).

PORT ?= 8080
JOBS ?= 2
BUILD ?= build
TEST_GROUPS = build test container deploy browser
CMAKE ?= cmake
CTEST ?= ctest
SAN_ENV = ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
          UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
          LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan.supp:print_suppressions=0

.PHONY: all deps check-setup run test test-main test-asan test-tsan test-valgrind test-fuzz bench image install format clean

all: $(BUILD)/.built

deps:
	@scripts/deps.sh build
	@scripts/check-setup.sh build

# What every suite of `make test` needs, listed item by item (-v); fails naming what is missing.
check-setup:
	@scripts/check-setup.sh -v $(TEST_GROUPS)

$(BUILD)/.built: deps
	$(CMAKE) -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo
	$(CMAKE) --build $(BUILD) -j$(JOBS)
	@touch $@

# Builds and starts the server on 127.0.0.1:$(PORT), counting into ./var/visits.
run: deps
	$(CMAKE) -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo
	$(CMAKE) --build $(BUILD) -j$(JOBS)
	@mkdir -p var
	exec $(BUILD)/adapters/h2o/visits-server --bind 127.0.0.1 --port $(PORT) --data-dir var

# The packages of every suite (scripts/deps.sh), then the setup check (scripts/check-setup.sh):
# a missing program fails here in a second, naming its package and deps.sh group.
# Then every suite, from fresh build directories, warnings as errors; then the unit,
# integration and example suites under ASan+UBSan, the library's unit tests and the server's
# integration tests under TSan, the library's unit tests under valgrind,
# and the fuzzers (the counter's parser 20 s, the GET /slots reader 25 s). (Not the example
# under TSan: gcc 12's TSan does not intercept openat(), so a client socket's descriptor
# number that the library reuses for a file shows up as a false race between the loop's and
# the committer's close().)
test:
	@scripts/deps.sh $(TEST_GROUPS)
	@scripts/check-setup.sh $(TEST_GROUPS)
	$(MAKE) test-main test-asan test-tsan test-valgrind test-fuzz

test-main:
	rm -rf build-test
	$(CMAKE) -S . -B build-test -DVISITS_WERROR=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo
	$(CMAKE) --build build-test -j$(JOBS)
	$(CTEST) --test-dir build-test --output-on-failure

test-asan:
	rm -rf build-asan
	$(CMAKE) -S . -B build-asan -DVISITS_WERROR=ON -DVISITS_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug
	$(CMAKE) --build build-asan -j$(JOBS)
	$(SAN_ENV) $(CTEST) --test-dir build-asan -L 'unit|integration|browser|example' --output-on-failure

test-tsan:
	rm -rf build-tsan
	$(CMAKE) -S . -B build-tsan -DVISITS_WERROR=ON -DVISITS_TSAN=ON -DCMAKE_BUILD_TYPE=Debug
	$(CMAKE) --build build-tsan -j$(JOBS)
	TSAN_OPTIONS=halt_on_error=1 $(CTEST) --test-dir build-tsan -R '^(unit_|server_)' --output-on-failure

test-valgrind:
	rm -rf build-valgrind
	$(CMAKE) -S . -B build-valgrind -DVISITS_WERROR=ON -DVISITS_BUILD_SERVER=OFF -DCMAKE_BUILD_TYPE=Debug
	$(CMAKE) --build build-valgrind -j$(JOBS)
	$(CTEST) --test-dir build-valgrind -T memcheck -R '^unit_' --output-on-failure \
	  --overwrite MemoryCheckCommandOptions="--error-exitcode=97 --leak-check=full --errors-for-leak-kinds=definite"

test-fuzz:
	rm -rf build-fuzz
	CC=clang $(CMAKE) -S . -B build-fuzz -DVISITS_WERROR=ON -DVISITS_BUILD_FUZZ=ON \
	  -DVISITS_BUILD_SERVER=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo
	$(CMAKE) --build build-fuzz -j$(JOBS) --target fuzz_parse fuzz_slots
	$(CTEST) --test-dir build-fuzz -L fuzz --output-on-failure

bench:
	@scripts/deps.sh build bench
	@scripts/check-setup.sh build bench
	$(CMAKE) -S . -B build-bench -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF
	$(CMAKE) --build build-bench -j$(JOBS)
	build-bench/bench/counter $(if $(BENCH_DIR),$(BENCH_DIR),build-bench/data)
	bench/http/run.sh build-bench/adapters/h2o/visits-server
	python3 bench/peers/durable.py --bin build-bench/bench/peers/durable --dir $(if $(BENCH_DIR),$(BENCH_DIR),build-bench/data) --out build-bench/results
	python3 bench/peers/http_sweep.py --server build-bench/adapters/h2o/visits-server --dir $(if $(BENCH_DIR),$(BENCH_DIR),build-bench/data) --out build-bench/results
	python3 bench/cluster/run.py --after build-bench/adapters/h2o/visits-server --out build-bench/results

# The container image, built offline: base image from the Debian mirror, then buildah.
image:
	@scripts/deps.sh container
	deploy/image/base-image.sh
	buildah bud --pull=never --isolation chroot --format docker -t visits:0.2.0 .

install: all
	$(CMAKE) --install $(BUILD)

format:
	clang-format -i include/*.h libvisits/*.[ch] adapters/*/*.[ch] tests/*/*.[ch] bench/*.c bench/*/*.c examples/*.c

clean:
	rm -rf build build-test build-asan build-tsan build-valgrind build-fuzz build-bench
