"""The CLI's parsing and output without a server: global options before or after the command, --help, stats."""

import json

import pytest

from tritonkit.client import cli, metrics

GLOBAL_OPTIONS = ("--url", "--protocol", "--timeout", "--retries", "--admin-key", "--json")


def _parse(*argv):
    return cli.build_parser().parse_args(list(argv))


@pytest.mark.parametrize(
    "argv",
    [
        ["--json", "--protocol", "grpc", "--timeout", "5", "sentiment", "Great food"],
        ["sentiment", "Great food", "--json", "--protocol", "grpc", "--timeout", "5"],
        ["--json", "--timeout", "5", "sentiment", "Great food", "--protocol", "grpc"],
    ],
)
def test_global_options_are_accepted_before_or_after_the_command(argv):
    args = _parse(*argv)
    assert (args.command, args.texts, args.json, args.protocol, args.timeout) == (
        "sentiment", ["Great food"], True, "grpc", 5.0)


def test_options_before_the_command_survive_the_commands_parser(monkeypatch):
    monkeypatch.setenv("TRITON_ADMIN_KEY", "from-the-environment")
    args = _parse("--url", "h:1", "--retries", "0", "--admin-key", "given", "models")
    assert (args.url, args.retries, args.admin_key) == ("h:1", 0, "given")
    assert _parse("models").admin_key == "from-the-environment"  # the default still comes from the top parser


def test_defaults_apply_when_no_option_is_given(monkeypatch):
    monkeypatch.delenv("TRITON_URL", raising=False)
    args = _parse("health")
    assert (args.url, args.protocol, args.timeout, args.retries, args.json) == (None, "http", 30.0, 6, False)


@pytest.mark.parametrize("argv", [["--help"], ["sentiment", "--help"], ["stats", "--help"]])
def test_help_lists_the_global_options(argv, capsys):
    with pytest.raises(SystemExit) as exited:
        _parse(*argv)
    out = capsys.readouterr().out
    assert exited.value.code == 0 and "before or after the command" in out
    assert all(option in out for option in GLOBAL_OPTIONS), out


def test_top_level_help_lists_every_command(capsys):
    with pytest.raises(SystemExit) as exited:
        _parse("--help")
    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert all(command in out for command in cli.COMMANDS)


STATISTICS_ENTRY = {
    "name": "diabetes_regressor", "version": "1", "inference_count": "8", "execution_count": "2",
    "inference_stats": {
        "success": {"count": "4", "ns": "8000000"}, "fail": {"count": "0", "ns": "0"},
        "queue": {"count": "4", "ns": "4000000"}, "compute_infer": {"count": "4", "ns": "2000000"},
        "compute_input": {"count": "4", "ns": "1000000"}, "compute_output": {"count": "4", "ns": "1000000"},
    },
}


class StatisticsOnlyClient:
    """Stands in for Client in ``cli.main``: answers ``statistics`` from STATISTICS_ENTRY."""

    def __init__(self, url, **options):
        self.url, self.options = url, options

    def __enter__(self):
        return self

    def __exit__(self, *_):
        pass

    def statistics(self, model=""):
        return [STATISTICS_ENTRY]


def test_stats_averages_come_from_the_metrics_module(monkeypatch, capsys):
    monkeypatch.setattr(cli, "Client", StatisticsOnlyClient)
    assert cli.main(["stats", "diabetes_regressor", "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    expected = metrics.averages(metrics.from_statistics(STATISTICS_ENTRY))
    assert {key: row[key] for key in expected} == expected
    assert (row["avg_queue_ms"], row["avg_compute_ms"], row["avg_batch"]) == (1.0, 1.0, 4.0)
    assert (row["inferences"], row["executions"]) == (8, 2)


def test_stats_prints_a_table_by_default(monkeypatch, capsys):
    monkeypatch.setattr(cli, "Client", StatisticsOnlyClient)
    assert cli.main(["--protocol", "grpc", "stats"]) == 0
    header = capsys.readouterr().out.splitlines()[0]
    assert header.split() == cli.STATS_HEADERS


def test_errors_print_the_fix_and_exit_1(capsys):
    assert cli.main(["infer", "m", "--inputs", "[1, 2]", "--url", "127.0.0.1:9", "--retries", "0"]) == 1
    assert "--inputs is a JSON list; give an object" in capsys.readouterr().err
