"""make analyze's Model Analyzer config: the embedded server as tritonserver, the sweep as asked."""

from __future__ import annotations

from pathlib import Path

from tritonkit.bench import analyze
from tritonkit.server.supervisor import embedded


def test_the_config_launches_the_embedded_server_with_its_backends_and_environment(tmp_path):
    args = analyze.parse_args(["--model", "diabetes_regressor", "--max-batch-size", "8,64", "--queue-delay-us",
                               "0,500", "--concurrency", "1"])
    config = analyze.config(args, Path("/x/perf_analyzer"), tmp_path)
    assert config["triton_launch_mode"] == "local"
    assert config["triton_server_path"] == str(embedded.pytriton_root() / "bin" / "tritonserver")
    assert Path(config["triton_server_flags"]["backend_directory"], "onnxruntime", "model.py").is_file()
    flags = config["triton_server_flags"]
    assert flags["http_address"] == flags["grpc_address"] == flags["metrics_address"] == "127.0.0.1"
    # The stub finds the project's interpreter (and so its site-packages) first on PATH; libpython is on the path.
    assert config["triton_server_environment"]["PATH"].split(":")[0] == str(Path(analyze.sys.executable).parent)
    assert "nvidia_pytriton.libs" in config["triton_server_environment"]["LD_LIBRARY_PATH"]
    model = config["profile_models"]["diabetes_regressor"]
    assert model["model_config_parameters"] == {
        "max_batch_size": [8, 64], "instance_group": [{"kind": "KIND_CPU", "count": [1, 2]}],
        "dynamic_batching": {"max_queue_delay_microseconds": [0, 500]}}
    assert model["parameters"] == {"concurrency": [1]} and model["cpu_only"]
    ports = {config[key].rsplit(":", 1)[-1].split("/")[0] for key in
             ("triton_http_endpoint", "triton_grpc_endpoint", "triton_metrics_url")}
    assert len(ports) == 3 and config["export_path"] == str(tmp_path)


def test_a_model_not_in_the_repository_is_named_with_the_fix(tmp_path, capsys):
    assert analyze.main(["--model", "no_such_model", "--repository", str(tmp_path)]) == 2
    assert "no_such_model" in capsys.readouterr().err
