"""bench/: the load generator, the baseline and the report, against the real server (the full run is `make bench`)."""

import asyncio

import numpy as np
import pytest
from conftest import infer_over

from tritonkit.bench import baseline, inputs, loadgen

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_closed_loop_measures_text_sentiment_without_errors(server, protocol):
    url = server.settings.grpc_url if protocol == "grpc" else server.settings.http_url.removeprefix("http://")
    payloads = [text.encode() for text in inputs.short_texts()[:10]]
    target = loadgen.TritonTarget("t", protocol, url, "text_sentiment", input_name="TEXT", payloads=payloads,
                                  outputs=("LABEL", "PROBABILITIES"))

    async def run():
        await target.open()
        try:
            return await loadgen.closed_loop(target, concurrency=4, requests=24, max_seconds=60)
        finally:
            await target.close()

    sample = asyncio.run(run())
    assert (len(sample.latencies), sample.errors) == (24, 0), sample.first_error
    assert 0 < sample.percentile(50) <= sample.percentile(95)
    assert sample.percentile(99) is None  # 24 requests are too few to quote a p99




def test_baseline_serves_the_same_model_as_triton_fp32(server):
    app = baseline.sentiment_app().test_client()
    texts = list(inputs.short_texts()[:4])
    served = infer_over(server.settings, "grpc", "text_sentiment_fp32",
                        {"TEXT": np.array([[text.encode()] for text in texts], dtype=np.object_)},
                        ["LABEL", "PROBABILITIES"])
    for row, text in enumerate(texts):
        answer = app.post("/predict", json={"text": text}).get_json()
        assert answer["label"] == served["LABEL"][row][0].decode()
        np.testing.assert_allclose(answer["probabilities"], served["PROBABILITIES"][row], atol=1e-4)
    refused = app.post("/predict", json={"text": "  "})
    assert refused.status_code == 400 and "non-empty text" in refused.get_json()["error"]










