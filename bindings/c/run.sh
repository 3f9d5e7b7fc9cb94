#!/usr/bin/env bash
# The C side of the C ABI, end to end: checks the generated header, builds the static library, compiles the C
# programs (under AddressSanitizer and UBSan when the compiler has them), runs the thread and log-callback tests,
# logs the example in against a fake-pod it starts and stops, and runs the conformance files through the C API.
# Exits non-zero on any failure; its last line is the conformance test's `conformance: N passed, M failed`.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$root"
target="${CARGO_TARGET_DIR:-$root/target}"
work="$(mktemp -d)"
fake_pod=""
cleanup() {
    if [[ -n $fake_pod ]]; then kill "$fake_pod" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

echo "== header"
"$here/check-header.sh"

echo "== build"
nice -n 10 cargo build --quiet -p symphony-auth-c
nice -n 10 cargo build --quiet -p symphony-auth-testkit --bin fake-pod
nice -n 10 cargo build --quiet -p symphony-auth-c --example conformance-text
library="$target/debug/libsymphony_auth.a"

cc="${CC:-cc}"
cflags=(-std=c11 -Wall -Wextra -Werror -g -I"$here/include")
# What a Rust static library needs from the system on Linux (`--print native-static-libs` lists it).
libs=(-lpthread -ldl -lm)
echo 'int main(void) { return 0; }' > "$work/probe.c"
if "$cc" -fsanitize=address,undefined "$work/probe.c" -o "$work/probe" 2>/dev/null && "$work/probe"; then
    cflags+=(-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer)
    echo "compiling with $cc, AddressSanitizer and UBSan"
else
    echo "compiling with $cc, without sanitizers (the compiler cannot build or run them)"
fi
for program in tests/conformance tests/threads tests/logging examples/login; do
    "$cc" "${cflags[@]}" "$here/$program.c" "$library" "${libs[@]}" -o "$work/$(basename "$program")"
done

echo "== threads sharing one login through a flight"
"$work/threads" fixtures/keys/bot-2048.pkcs8.pem

echo "== the log callback: the lines of logins, and no secret in them"
"$work/logging" fixtures/keys/bot-2048.pkcs8.pem

echo "== examples/login.c against fake-pod"
# fake-pod serves until its stdin closes: this script holds the write end of a pipe as its stdin.
mkfifo "$work/fake-pod.in" "$work/fake-pod.out"
"$target/debug/fake-pod" --rsa-bot example.bot=fixtures/keys/bot-2048.pub.pem \
    < "$work/fake-pod.in" > "$work/fake-pod.out" 2> "$work/fake-pod.err" &
fake_pod=$!
exec 3> "$work/fake-pod.in" 4< "$work/fake-pod.out"
if ! read -r -t 60 ready <&4; then
    echo "fake-pod printed no URLs within 60 s:" >&2
    cat "$work/fake-pod.err" >&2
    exit 1
fi
url_of() { sed -n "s/.*\"$1\":\"\([^\"]*\)\".*/\1/p" <<< "$ready"; }
"$work/login" "$(url_of pod)" "$(url_of key_manager)" "$(url_of agent)" example.bot fixtures/keys/bot-2048.pkcs8.pem
exec 3>&- 4<&-
wait "$fake_pod"
fake_pod=""

echo "== conformance files through the C API"
files=(conformance/login-vectors.json)
if [[ -f conformance/machine-transcripts.json ]]; then
    files+=(conformance/machine-transcripts.json)
else
    echo "conformance/machine-transcripts.json is not there yet: login vectors only"
fi
for file in "${files[@]}"; do
    "$target/debug/examples/conformance-text" "$file" > "$work/$(basename "$file" .json).txt"
done
"$work/conformance" "$work"/*.txt
