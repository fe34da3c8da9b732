"""A large upload streams to disk: the server's resident memory stays flat."""

from bench.upload_memory import rss_growth_during, synthetic_safetensors, upload_chunks
from effcap.protos.v1 import artifact_pb2


def test_a_256_mib_upload_raises_server_memory_by_far_less_than_its_size(server, client):
    digest, chunks = synthetic_safetensors(256 << 20)
    artifact, _, growth_kib = rss_growth_during(server.process.pid, lambda: upload_chunks(client, digest, chunks))
    assert artifact.format == artifact_pb2.ARTIFACT_FORMAT_SAFETENSORS and artifact.digest == digest
    assert growth_kib < 64 * 1024, f"server memory grew by {growth_kib / 1024:.0f} MiB during a 256 MiB upload"
