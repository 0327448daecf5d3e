"""Locust users over the public endpoints, load shapes, SLOs as the exit code, and the generator's CPU use.

Run through ``python -m tritonkit.loadtest`` (``make loadtest``), or directly:
``locust -f loadtest/locustfile.py --config loadtest/locust.conf --host http://127.0.0.1:8000 MixedUser``.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import gevent
import psutil
from locust import LoadTestShape, between, events, task

from tritonkit import catalog
from tritonkit.loadtest import slo, workload
from tritonkit.loadtest.triton_user import TritonUser

CPU_WARN_PERCENT = 90.0
CPU_SAMPLE_S = 1.0


@events.init_command_line_parser.add_listener
def _options(parser):
    parser.add_argument("--triton-protocol", choices=["http", "grpc"], default="http", help="http or grpc")
    parser.add_argument("--grpc-port", type=int, default=8001, help="the server's gRPC port (for grpc)")
    parser.add_argument("--load-shape", choices=["steady", "step", "spike"], default="steady",
                        help="steady: all users at once; step: a quarter more every quarter; spike: 3x mid-run")
    parser.add_argument("--slo-file", default=str(slo.DEFAULT_FILE), help="per-endpoint SLOs (JSON)")
    parser.add_argument("--report-json", default="", help="write per-endpoint results and CPU use here")


def _text() -> str:
    return random.choice(workload.texts())


class MixedUser(TritonUser):
    """Every public endpoint, weighted like a product mixing search, reviews and forms."""

    wait_time = between(0.0, 0.05)

    @task(4)
    def sentiment(self):
        self.call("text_sentiment", lambda c: c.sentiment([_text()]))

    @task(2)
    def lstm(self):
        self.call("lstm_sentiment", lambda c: c.sentiment([_text()], model="lstm_sentiment"))

    @task(3)
    def embedding(self):
        self.call("text_embedding", lambda c: c.embed([_text()]))

    @task(2)
    def digit(self):
        self.call("digit_classifier", lambda c: c.classify_digit(random.choice(workload.digit_images())))

    @task(1)
    def diabetes(self):
        rows = workload.tabular_rows()["diabetes"]
        self.call("diabetes_regressor", lambda c: c.predict_diabetes(rows[random.randrange(len(rows))]))

    @task(1)
    def cancer(self):
        rows = workload.tabular_rows()["cancer"]
        self.call("cancer_classifier", lambda c: c.predict_cancer(rows[random.randrange(len(rows))]))

    @task(1)
    def recommend(self):
        user = random.choice(workload.movie_users())
        self.call(catalog.RECOMMENDER_ENDPOINT, lambda c: c.recommend(user, 10))


def _focused(name: str, task_method):
    """A user class that runs one of MixedUser's tasks only.

    For focused runs: ``python -m tritonkit.loadtest --user X``.
    """
    return type(name, (TritonUser,), {"wait_time": between(0.0, 0.05), "tasks": [task_method]})


SentimentUser = _focused("SentimentUser", MixedUser.sentiment)
LstmUser = _focused("LstmUser", MixedUser.lstm)
EmbeddingUser = _focused("EmbeddingUser", MixedUser.embedding)
DigitUser = _focused("DigitUser", MixedUser.digit)
DiabetesUser = _focused("DiabetesUser", MixedUser.diabetes)
CancerUser = _focused("CancerUser", MixedUser.cancer)
RecommenderUser = _focused("RecommenderUser", MixedUser.recommend)


class ConfiguredShape(LoadTestShape):
    """--load-shape picks the curve; -u, -r and --run-time size it. Stops itself at the run time."""

    def tick(self):
        options = self.runner.environment.parsed_options
        run_time, users, rate = options.run_time or 60, options.num_users or 1, options.spawn_rate or 1
        now = self.get_run_time()
        if now >= run_time:
            return None
        if options.load_shape == "step":
            step = min(3, int(4 * now / run_time))
            return max(1, round(users * (step + 1) / 4)), rate
        if options.load_shape == "spike" and 0.4 * run_time <= now < 0.6 * run_time:
            return users * 3, rate * 3
        return users, rate


_cpu_samples: list[float] = []


@events.test_start.add_listener
def _watch_cpu(environment, **_):
    workload.texts(), workload.digit_images(), workload.tabular_rows()  # built before sampling: not load
    process = psutil.Process()
    process.cpu_percent()

    def sample():
        while True:
            gevent.sleep(CPU_SAMPLE_S)
            _cpu_samples.append(process.cpu_percent())

    gevent.spawn(sample)


@events.quitting.add_listener
def _apply_slos(environment, **_):
    """Sets the exit code from the SLO file, says which objective broke, and writes the JSON report."""
    options = environment.parsed_options
    results = {
        entry.name: {
            "protocol": entry.method, "num_requests": entry.num_requests, "num_failures": entry.num_failures,
            "failure_ratio": entry.fail_ratio, "rps": entry.total_rps,
            "p50_ms": entry.get_response_time_percentile(0.50), "p95_ms": entry.get_response_time_percentile(0.95),
            "p99_ms": entry.get_response_time_percentile(0.99),
        }
        for entry in environment.stats.entries.values()
    }
    broken = slo.breaches(slo.load(Path(options.slo_file)), results)
    peak_cpu = max(_cpu_samples, default=0.0)
    mean_cpu = sum(_cpu_samples) / len(_cpu_samples) if _cpu_samples else 0.0
    if peak_cpu > CPU_WARN_PERCENT:
        print(f"WARNING: the load generator used {peak_cpu:.0f}% CPU (above {CPU_WARN_PERCENT:.0f}%): "
              "it may be the bottleneck; use fewer users or --processes")
    for breach in broken:
        print(f"SLO BREACHED: {breach}")
    environment.process_exit_code = 1 if broken else 0
    if options.report_json:
        Path(options.report_json).write_text(json.dumps(
            {"endpoints": results, "slo_breaches": broken,
             "generator_cpu_percent": {"mean": mean_cpu, "peak": peak_cpu}}, indent=2))
