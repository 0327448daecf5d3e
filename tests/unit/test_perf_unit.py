"""make perf's parts that need no server: perf_analyzer's input data from the real inputs, and its CSV read back."""

from __future__ import annotations

import base64
import io
import struct

import numpy as np
from PIL import Image

from tritonkit.bench import perf
from tritonkit.loadtest import workload
from tritonkit.server.settings import ServerSettings


def test_input_data_carries_real_requests_of_one_item_without_the_batch_dimension():
    texts = perf.input_data("text_sentiment", samples=3)["data"]
    assert [sample["TEXT"] for sample in texts] == [
        {"content": [text], "shape": [1]} for text in workload.sentences()[:3]]
    rows = perf.input_data("diabetes_regressor", samples=2)["data"]
    assert rows[0]["FEATURES"]["shape"] == [10]
    np.testing.assert_allclose(rows[0]["FEATURES"]["content"], workload.tabular_rows()["diabetes"][0], rtol=1e-6)


def test_an_encoded_image_goes_as_base64_of_tritons_bytes_layout():
    # perf_analyzer sends b64 content as the raw tensor: for BYTES, each element's 4-byte length before its bytes.
    # Without the length Triton read the PNG's first bytes as one (3774863615) and refused the request.
    image = perf.input_data("digit_classifier", samples=1)["data"][0]["IMAGE"]
    raw = base64.b64decode(image["content"]["b64"])
    (length,) = struct.unpack("<I", raw[:4])
    assert image["shape"] == [1] and length == len(raw) - 4
    assert Image.open(io.BytesIO(raw[4:])).size == (32, 32)  # the first held-out digit, as workload.py draws it


def test_the_csv_perf_analyzer_writes_is_read_in_milliseconds(tmp_path):
    path = tmp_path / "out.csv"
    path.write_text("Concurrency,Inferences/Second,Client Send,Network+Server Send/Recv,Server Queue,Server Compute "
                    "Input,Server Compute Infer,Server Compute Output,Client Recv,p50 latency,p90 latency,p95 latency,"
                    "p99 latency\n1,71.5396,78,1660,1,64,11933,213,0,12270,19539,23009,28735\n")
    assert perf.read_csv(path) == [{"concurrency": 1, "throughput": 71.5396, "p50_ms": 12.27, "p95_ms": 23.009,
                                    "p99_ms": 28.735}]


def test_the_admin_key_goes_as_the_header_of_each_protocol(tmp_path):
    settings = ServerSettings(admin_key="k" * 20)
    common = {"data": tmp_path / "d.json", "csv_path": tmp_path / "o.csv", "concurrency": "1", "interval_ms": 500}
    http = perf.command(tmp_path / "pa", "text_sentiment", "http", settings, **common)
    grpc = perf.command(tmp_path / "pa", "text_sentiment", "grpc", settings, **common)
    assert http[http.index("-H") + 1] == "triton-admin-key:" + "k" * 20
    assert grpc[grpc.index("-H") + 1] == "triton-grpc-protocol-triton-admin-key:" + "k" * 20
    assert http[http.index("-u") + 1] == "127.0.0.1:8000" and grpc[grpc.index("-u") + 1] == "127.0.0.1:8001"


def test_the_report_puts_our_generator_beside_perf_analyzer_with_the_ratio():
    row = {"concurrency": 8, "throughput": 92.0, "p50_ms": 87.4, "p95_ms": 129.3, "p99_ms": 152.1,
           "ours": {"throughput": 92.0 / 1.25, "p50_ms": 87.2, "p95_ms": 135.9}}
    text = perf.markdown({("text_sentiment", "grpc"): [row], ("diabetes_regressor", "grpc"): [
        {"concurrency": 8, "throughput": 1.0, "p50_ms": 1.0, "p95_ms": 1.0, "p99_ms": 1.0}]}, "note")
    expected = ("| `text_sentiment` | grpc | 8 | 92.0 req/s | 87.4 / 129.3 / 152.1 ms | "
                "73.6 req/s; 87.2 / 135.9 ms | 1.25x |")
    assert expected in text
    assert "| `diabetes_regressor` | grpc | 8 | 1.0 req/s | 1.0 / 1.0 / 1.0 ms | — | — |" in text


def test_repeats_merge_into_medians_with_the_ratio_of_each_repeat():
    def row(throughput, ours):
        return {"concurrency": 1, "throughput": throughput, "p50_ms": throughput / 10, "p95_ms": 2.0, "p99_ms": 3.0,
                "ours": {"throughput": ours, "p50_ms": 1.0, "p95_ms": 2.0}}

    (merged,) = perf.merge([[row(100.0, 100.0)], [row(130.0, 100.0)], [row(90.0, 100.0)]])
    assert merged["throughput"] == 100.0 and merged["p50_ms"] == 10.0 and merged["ours"]["throughput"] == 100.0
    assert merged["ratios"] == [1.0, 1.3, 0.9]
    text = perf.markdown({("text_sentiment", "http"): [merged]}, "note")
    assert "| 1.00x (0.90-1.30) |" in text
