#!/usr/bin/env bash
# Installs the Debian packages the tests drive for real, only those missing, in one apt-get.
# `npm test` runs it first, so the README's test command passes on a fresh Debian machine.
# Each line: a path that proves the package is there, then the package.
set -euo pipefail
needs=(
  "/usr/share/doc/python3-numpy python3-numpy"                     # NVIDIA's Triton HTTP client (test/conformance)
  "/usr/share/doc/python3-geventhttpclient python3-geventhttpclient" # … its HTTP transport
  "/usr/share/doc/python3-rapidjson python3-rapidjson"             # … its JSON codec
  "/usr/share/doc/python3-grpcio python3-grpcio"                   # Python's gRPC (C-core) against the gRPC listener (test/conformance/grpc-python)
  "/usr/share/doc/python3-protobuf python3-protobuf"               # … its protobuf runtime
  "/usr/bin/protoc protobuf-compiler"                              # … compiles src/grpc/grpc_predict_v2.proto for it at test time
  "/usr/bin/chromium chromium"                 # the dashboard test (playwright-core, no browser download)
  "/usr/sbin/mosquitto mosquitto"              # MQTT tests start their own on free ports (mosquitto_passwd too)
  "/usr/bin/mosquitto_sub mosquitto-clients"   # test/mqtt/hint.test.ts runs the mosquitto_sub/_pub line `modelguard up` prints
  "/usr/bin/openssl openssl"                   # offload link and proxy↔broker mTLS tests make their own CA
  "/usr/bin/kubectl kubernetes-client"         # kubectl renders deploy/base in test/k8s
  "/usr/sbin/tc iproute2"                      # test/qos: tc and ip netns (network namespaces, run as root)
  "/usr/bin/python3 python3"                   # test/qos: the bulk uploads and their sink
  "/usr/sbin/ip iproute2"                      # also test/newcomer: default ports in a private network namespace (unshare -rn)
  "/usr/bin/curl curl"                         # test/newcomer: the README's curl commands, run as written
  "/usr/bin/promtool prometheus"               # test/observability/exposition.test.ts: promtool check metrics on what /metrics serves
)
missing=()
for line in "${needs[@]}"; do
  read -r path pkg <<<"$line"
  [ -e "$path" ] || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then SUDO=sudo; else
    echo "The tests need these Debian packages: ${missing[*]}" >&2
    echo "Install them as root:  apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
else SUDO=; fi
echo "installing the Debian packages the tests drive: ${missing[*]}" >&2
$SUDO apt-get update -q
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q "${missing[@]}"
