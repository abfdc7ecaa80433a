#!/usr/bin/env bash
# Runs every Fuzz target of the module, one after the other, for $FUZZTIME each (default 60s).
# Targets are discovered with `go test -list '^Fuzz'`, so a new one needs no registration here.
# A finding fails the run; Go writes its input to the package's testdata/fuzz/<Target>/, where
# it stays as a regression case once the bug is fixed. FUZZ_PKGS narrows the packages (default ./...).
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
FUZZTIME=${FUZZTIME:-60s}
PKGS=${FUZZ_PKGS:-./...}

# `go test -list` prints the matching names of each package, then "ok  <import path> ...". A
# package whose tests do not build fails the run here, rather than being skipped.
listing=$($GO test -list '^Fuzz' $PKGS)
targets=()
names=()
while read -r line; do
	case "$line" in
	Fuzz*) names+=("$line") ;;
	ok*)
		pkg=$(awk '{print $2}' <<<"$line")
		for n in "${names[@]}"; do targets+=("$pkg $n"); done
		names=()
		;;
	*) names=() ;;
	esac
done <<<"$listing"

if [ ${#targets[@]} -eq 0 ]; then
	echo "fuzz: no Fuzz targets found in $PKGS" >&2
	exit 1
fi
echo "fuzz: ${#targets[@]} targets, $FUZZTIME each"
failed=()
out=$(mktemp)
trap 'rm -f "$out"' EXIT
for t in "${targets[@]}"; do
	read -r pkg name <<<"$t"
	echo "=== $pkg $name"
	if $GO test -run '^$' -fuzz "^${name}\$" -fuzztime "$FUZZTIME" "$pkg" 2>&1 | tee "$out"; [ "${PIPESTATUS[0]}" -eq 0 ]; then
		continue
	fi
	# On a loaded machine Go's coordinator can miss its own deadline while stopping the
	# workers ("context deadline exceeded" with no input written): that is no finding.
	if grep -q 'context deadline exceeded' "$out" && ! grep -q 'Failing input written' "$out"; then
		echo "fuzz: $name: the fuzzing engine overran its deadline while stopping (machine load); no failing input, not a finding"
		continue
	fi
	failed+=("$pkg $name")
done
if [ ${#failed[@]} -gt 0 ]; then
	printf 'fuzz: findings in:\n' >&2
	printf '  %s\n' "${failed[@]}" >&2
	exit 1
fi
echo "fuzz: every target ran $FUZZTIME without a finding"
