#!/usr/bin/env bash
# Regenerate the Python protobuf/gRPC stubs in nomad_ctr/_pb from proto/*.proto.
# The output is committed, so installs need no protoc; run this after editing a .proto.
# Needs grpcio-tools (pip install grpcio-tools). protoc emits top-level imports
# ("import base_pb2"); we rewrite them to package-relative ones.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="$root/nomad_ctr/_pb"
python="${PYTHON:-python3}"

rm -f "$out"/*_pb2.py "$out"/*_pb2.pyi "$out"/*_pb2_grpc.py
mkdir -p "$out"

cd "$root/proto"
"$python" -m grpc_tools.protoc -I . \
    --python_out="$out" --pyi_out="$out" --grpc_python_out="$out" \
    ./*.proto

# "import hclspec_pb2 as hclspec__pb2" -> "from . import hclspec_pb2 as hclspec__pb2"
sed -i -E 's/^import ([A-Za-z0-9_]+_pb2)( as |$)/from . import \1\2/' \
    "$out"/*_pb2.py "$out"/*_pb2.pyi "$out"/*_pb2_grpc.py

cat > "$out/__init__.py" <<'PY'
"""Generated protobuf and gRPC stubs (scripts/gen_proto.sh). Do not edit."""
PY

gen_version="$("$python" -c 'import grpc_tools, importlib.metadata as m; print(m.version("grpcio-tools"))')"
proto_version="$("$python" -c 'from google.protobuf import __version__ as v; print(v)')"
echo "generated with grpcio-tools $gen_version (protobuf runtime here: $proto_version)"
