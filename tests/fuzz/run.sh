#!/bin/sh
# Builds and runs the libFuzzer targets, or replays the regression inputs.
#
#   sh tests/fuzz/run.sh fuzz_http_parser fuzz_chunked fuzz_proxy
#   sh tests/fuzz/run.sh replay          (plain main(), any C++17 compiler)
#
# FUZZ_CXX (default clang++) builds each target with
# -fsanitize=fuzzer,address,undefined into tests/fuzz/build/ and runs it for
# FUZZ_SECONDS (default 180) with http.dict, a scratch corpus in build/ and the
# seeds of corpus/<target>/. A crash leaves build/<target>-crash-*; copy it to
# corpus/regressions/ once fixed. REPLAY_CXX (default c++) builds the replay.
set -eu

cd "$(dirname "$0")/../.."
FUZZ_CXX=${FUZZ_CXX:-clang++}
FUZZ_SECONDS=${FUZZ_SECONDS:-180}
REPLAY_CXX=${REPLAY_CXX:-c++}
FUZZ_FLAGS=${FUZZ_FLAGS:-}
BUILD=tests/fuzz/build

[ $# -gt 0 ] || set -- fuzz_http_parser fuzz_chunked fuzz_proxy
mkdir -p "$BUILD"

status=0
for target in "$@"; do
	if [ "$target" = replay ]; then
		$REPLAY_CXX -std=c++17 -O1 -g -Wall -Wextra -Iinclude \
		    tests/fuzz/replay_main.cpp src/http_parser.cpp -o "$BUILD/replay"
		"$BUILD/replay" tests/fuzz/corpus/regressions || status=1
		continue
	fi
	src=tests/fuzz/$target.cpp
	if [ ! -f "$src" ]; then
		echo "run.sh: no such target: $target" >&2
		status=1
		continue
	fi
	echo "== $target: building with $FUZZ_CXX"
	$FUZZ_CXX -std=c++17 -O1 -g -fno-omit-frame-pointer \
	    -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
	    -Iinclude "$src" src/http_parser.cpp -o "$BUILD/$target"
	mkdir -p "$BUILD/corpus-$target"
	log=$BUILD/$target.log
	echo "== $target: fuzzing for ${FUZZ_SECONDS}s"
	# shellcheck disable=SC2086
	if UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	    "$BUILD/$target" -max_total_time="$FUZZ_SECONDS" -print_final_stats=1 \
	    -dict=tests/fuzz/http.dict -artifact_prefix="$BUILD/$target-" $FUZZ_FLAGS \
	    "$BUILD/corpus-$target" "tests/fuzz/corpus/$target" >"$log" 2>&1; then
		runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
		secs=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" | tail -n 1)
		cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1)
		echo "== $target: ${runs:-?} executions in ${secs:-?}s, $cov, no crash"
	else
		echo "== $target: FAILED, see $log" >&2
		grep -E 'ERROR|SUMMARY|Test unit written' "$log" >&2 || true
		status=1
	fi
done
exit $status
