"""A small compressed upload that would inflate past --max-inflated-bytes is refused by name at CreateAudit, and
the server's own memory does not move."""

from __future__ import annotations

import grpc
import numpy as np
from grpc_health.v1 import health_pb2, health_pb2_grpc

from effcap.clients.errors import EffcapError
from effcap.clients.sdk import EffcapClient
from effcap.protos.v1 import spec_pb2

from .conftest import ServerProcess, digits_spec

MIB = 1 << 20


def test_an_inflating_dataset_past_the_cap_is_refused_naming_it_and_the_server_stays_small(tmp_path, demo_files):
    bomb = tmp_path / "bomb.npz"
    x = np.zeros((1 << 20, 1, 8, 8), np.uint8)  # 64 MiB of zeros, 64 KiB compressed; about 0.6 GiB loaded
    np.savez_compressed(bomb, x_train=x, y_train=np.zeros(len(x), np.uint8))
    server = ServerProcess(tmp_path / "server", "--max-inflated-bytes", str(64 * MIB)).start()
    try:
        baseline = server.rss_peak_kib()
        with EffcapClient(server.address) as client:
            model, data = client.upload(demo_files[0]), client.upload(bomb)
            refused = []
            for _ in range(3):
                try:
                    client.create_audit(
                        model, spec_pb2.DatasetRef(artifact=data), digits_spec("true", seeds=1, epochs=1)
                    )
                except EffcapError as error:
                    refused.append((error.code, error.reason, error.field))
            assert refused == [("RESOURCE_EXHAUSTED", "INPUT_TOO_LARGE_IN_MEMORY", "dataset.artifact")] * 3
        with grpc.insecure_channel(server.address) as channel:
            health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
            assert health.status == health_pb2.HealthCheckResponse.SERVING
        assert server.rss_peak_kib() - baseline < 16 * 1024, "the server's peak RSS grew by more than 16 MiB"
    finally:
        server.stop()
