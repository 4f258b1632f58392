#!/usr/bin/env python3
"""Decodes a Kubernetes protobuf body (k8s\\0 + runtime.Unknown) with Google's protobuf runtime
and the .proto beside this file, and prints {"apiVersion", "kind", "object"} as JSON.

An independent check of our encoder: nothing here comes from the Rust code. The .proto is
compiled with grpc_tools' protoc (PyPI grpcio-tools; .ci/run installs it with protobuf).
Usage: decode.py BODY_FILE
"""
import importlib
import json
import os
import sys
import tempfile

from google.protobuf import json_format
from grpc_tools import protoc

HERE = os.path.dirname(os.path.abspath(__file__))
MAGIC = b"k8s\x00"


def compiled():
    out = tempfile.mkdtemp(prefix="k8s-proto-")
    rc = protoc.main(["protoc", f"-I{HERE}", f"--python_out={out}", os.path.join(HERE, "k8s_metrics.proto")])
    if rc != 0:
        sys.exit(f"protoc failed: {rc}")
    sys.path.insert(0, out)
    return importlib.import_module("k8s_metrics_pb2")


def main():
    body = open(sys.argv[1], "rb").read()
    if not body.startswith(MAGIC):
        sys.exit(f"no k8s magic: {body[:8]!r}")
    pb = compiled()
    unknown = pb.Unknown()
    unknown.ParseFromString(body[len(MAGIC):])
    kind = unknown.typeMeta.kind
    message = getattr(pb, kind)()
    message.ParseFromString(unknown.raw)
    obj = json_format.MessageToDict(message, preserving_proto_field_name=True)
    print(json.dumps({"apiVersion": unknown.typeMeta.apiVersion, "kind": kind, "object": obj}))


if __name__ == "__main__":
    main()
