"""The Python SDK and the `effcap` CLI. Light: grpcio, protobuf, pydantic, rich; torch only for --local."""
