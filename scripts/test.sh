#!/usr/bin/env bash
# The project's one test command (README and .ci/run call it): type check, lint, then every test
# file, passed explicitly because Node 20's runner does not expand globs itself.
set -euo pipefail
cd "$(dirname "$0")/.."
shopt -s globstar nullglob
bash scripts/test-deps.sh
npx tsc --noEmit
npx eslint --no-error-on-unmatched-pattern src test bench
files=(test/**/*.test.ts)
if [ ${#files[@]} -eq 0 ]; then echo "no test files found" >&2; exit 1; fi
exec node --import tsx --test --test-concurrency=1 "${files[@]}"
