"""``movie_recommendations`` served by a real tritonserver, over HTTP and gRPC, against the trained PyTorch DeepFM.

The served top K is the PyTorch model's own ranking of the movies the user has not rated (all of their ratings,
training and held out), its scores within 1e-4; an unknown user gets the popular movies, flagged; a bad K is a
400 naming the limit, alone in its batch; the scorer is called in batches, not once per movie.
"""

import json
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from conftest import infer_over
from tritonclient.utils import InferenceServerException

from tritonkit import catalog, paths
from tritonkit.client import Client, codec
from tritonkit.export import pipeline
from tritonkit.export.builtin import recommender

pytestmark = pytest.mark.integration
ENDPOINT = catalog.RECOMMENDER_ENDPOINT
OUTPUTS = codec.RECOMMENDATION_OUTPUTS
USERS = [1, 15, 547]  # 547 rated the most movies (2,391)
ATTEMPTS_TO_BATCH = 5


@pytest.fixture(scope="module")
def data():
    return recommender.movielens()


@pytest.fixture(scope="module")
def deepfm(data):
    import torch

    module = recommender.deepfm_module(len(data.user_ids), len(data.movie_ids), len(data.genre_names))
    weights = pipeline.pytorch_weights_path(paths.model_repository(), "movie_deepfm")
    module.load_state_dict(torch.load(weights, weights_only=True))
    return module.eval()


def _ask(server, protocol, users, k):
    return infer_over(server.settings, protocol, ENDPOINT, codec.recommendation_input(users, k), OUTPUTS)


def _rated(data, user: int) -> np.ndarray:
    index = int(np.searchsorted(data.user_ids, user))
    everything = np.concatenate([data.train, data.held_out])
    return data.movie_ids[everything[everything[:, 0] == index, 1]]


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_served_top_k_is_the_pytorch_models_ranking_of_unrated_movies(server, protocol, data, deepfm):
    answer = _ask(server, protocol, USERS, 10)
    assert answer["MOVIE_IDS"].shape == answer["SCORES"].shape == answer["TITLES"].shape == (len(USERS), 10)
    for row, user in enumerate(USERS):
        index = int(np.searchsorted(data.user_ids, user))
        scores = recommender.score_all(deepfm, data, index)
        unrated = np.flatnonzero(~np.isin(data.movie_ids, _rated(data, user)))
        expected = unrated[np.lexsort((unrated, -scores[unrated]))][:10]
        np.testing.assert_allclose(answer["SCORES"][row], scores[expected], atol=1e-4)
        served = answer["MOVIE_IDS"][row]
        # The same movies in the same order, except where two scores are closer than float32 noise.
        near = np.abs(np.diff(scores[expected])) < 1e-5
        if not near.any():
            assert served.tolist() == data.movie_ids[expected].tolist()
        assert set(served.tolist()) <= set(data.movie_ids[unrated].tolist())
        assert [t.decode() for t in answer["TITLES"][row]] == [data.titles[int(np.searchsorted(data.movie_ids, m))]
                                                               for m in served]
        assert not answer["POPULAR_FALLBACK"][row, 0]


def test_no_movie_a_user_rated_is_ever_recommended(server, data):
    with Client(server.settings.grpc_url, protocol="grpc") as client:
        found = client.recommend(USERS, catalog.MAX_RECOMMENDATIONS)
    for user, movies in zip(USERS, found, strict=True):
        ids = [movie.movie_id for movie in movies]
        assert len(ids) == len(set(ids)) == catalog.MAX_RECOMMENDATIONS
        assert not set(ids) & set(_rated(data, user).tolist()), f"user {user} was recommended a movie they rated"
        assert [movie.score for movie in movies] == sorted((movie.score for movie in movies), reverse=True)


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_an_unknown_user_gets_the_popular_movies_flagged(server, protocol, data):
    answer = _ask(server, protocol, [0, 100_000], 5)
    assert answer["POPULAR_FALLBACK"].tolist() == [[True], [True]]
    likes = recommender.popularity(data)
    order = np.lexsort((data.movie_ids, -likes))[:5]
    assert answer["MOVIE_IDS"].tolist() == [data.movie_ids[order].tolist()] * 2
    np.testing.assert_allclose(answer["SCORES"][0], likes[order] / len(data.user_ids), rtol=1e-6)


@pytest.mark.parametrize("protocol", ["http", "grpc"])
@pytest.mark.parametrize("k", [0, -3, catalog.MAX_RECOMMENDATIONS + 1])
def test_a_k_outside_the_limit_is_a_400_naming_it(server, protocol, k):
    inputs = {"USER_ID": np.array([[1]], dtype=np.int64), "K": np.array([[k]], dtype=np.int32)}
    with pytest.raises(InferenceServerException) as caught:
        infer_over(server.settings, protocol, ENDPOINT, inputs, OUTPUTS)
    assert caught.value.status() in ("400", "StatusCode.INVALID_ARGUMENT")
    assert f"outside 1..{catalog.MAX_RECOMMENDATIONS}" in caught.value.message()


def _stats(server, model: str) -> dict:
    with urllib.request.urlopen(f"{server.settings.http_url}/v2/models/{model}/stats", timeout=10) as response:
        return json.load(response)["model_stats"][0]


def _request(server, protocol, user, k):
    inputs = {"USER_ID": np.array([[user]], dtype=np.int64), "K": np.array([[k]], dtype=np.int32)}
    try:
        return "ok", infer_over(server.settings, protocol, ENDPOINT, inputs, OUTPUTS)["MOVIE_IDS"]
    except InferenceServerException as exc:
        return exc.status(), exc.message()


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_a_bad_request_fails_alone_in_its_batch_and_the_scorer_runs_batched(server, protocol):
    ks = [10, 10, 0, 10, 10, 10, catalog.MAX_RECOMMENDATIONS + 1, 10]
    users = range(1, len(ks) + 1)  # one user a request: each has its own ~9,000 candidates to score
    batched = False
    for _ in range(ATTEMPTS_TO_BATCH):  # a burst usually shares a batch; a busy machine may need another try
        before, scorer_before = _stats(server, ENDPOINT), _stats(server, "movie_deepfm")
        with ThreadPoolExecutor(len(ks)) as pool:
            results = list(pool.map(lambda pair: _request(server, protocol, *pair), zip(users, ks, strict=True)))
        after, scorer_after = _stats(server, ENDPOINT), _stats(server, "movie_deepfm")
        for (status, value), k in zip(results, ks, strict=True):
            if 1 <= k <= catalog.MAX_RECOMMENDATIONS:
                assert status == "ok" and value.shape == (1, k), value
            else:
                assert status in ("400", "StatusCode.INVALID_ARGUMENT") and "outside 1.." in value, value
        good = sum(1 <= k <= catalog.MAX_RECOMMENDATIONS for k in ks)
        # Six users' ~9,000 candidates each, in calls of up to 4,096 rows: a few calls, never one per movie.
        scored = scorer_after["inference_count"] - scorer_before["inference_count"]
        calls = scorer_after["execution_count"] - scorer_before["execution_count"]
        assert scored >= good * 8000 and calls <= good * 3, (scored, calls)
        if after["execution_count"] - before["execution_count"] < len(ks):
            batched = True
            break
    assert batched, "no dynamic batch was formed; the test proves nothing"


def test_the_cli_prints_each_users_top_k(server, capsys):
    from tritonkit.client import cli

    url = server.settings.http_url.removeprefix("http://")
    assert cli.main(["recommend", "42", "0", "-k", "3", "--url", url, "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(row["user"], row["rank"], row["popular_fallback"]) for row in rows] == [
        (42, 1, False), (42, 2, False), (42, 3, False), (0, 1, True), (0, 2, True), (0, 3, True)]
    assert cli.main(["recommend", "42", "-k", "101", "--url", url]) == 1
    assert f"k=101 must be within 1..{catalog.MAX_RECOMMENDATIONS}" in capsys.readouterr().err
