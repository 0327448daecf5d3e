"""The recommender's pure parts: its catalog, candidates, top-K and request checks, and the client's codec."""

import json

import numpy as np
import pytest

from tritonkit import catalog
from tritonkit.client import codec
from tritonkit.steps import RequestError, movies

CATALOG = {
    "genres": ["Comedy", "Drama"],
    "movies": [{"id": 10, "title": "A", "year": 1995, "decade": 10, "genres": ["Comedy"]},
               {"id": 20, "title": "B", "year": None, "decade": 0, "genres": []},
               {"id": 30, "title": "C", "year": 2001, "decade": 11, "genres": ["Comedy", "Drama"]},
               {"id": 40, "title": "D", "year": 1950, "decade": 6, "genres": ["Drama"]}],
    "rated": {"7": [20, 40], "8": []},
    "users": [7, 8],
    "popular": [[30, 2], [10, 1]],
}


@pytest.fixture
def movie_catalog(tmp_path):
    path = tmp_path / "movies.json"
    path.write_text(json.dumps(CATALOG))
    return movies.MovieCatalog(path)


def test_candidates_are_the_movies_a_user_has_not_rated(movie_catalog):
    assert movie_catalog.candidates(7).tolist() == [0, 2]
    assert movie_catalog.candidates(8).tolist() == [0, 1, 2, 3]


def test_features_are_what_the_scoring_model_takes(movie_catalog):
    features = movie_catalog.features(8, np.array([2, 1]))
    assert features["user"].tolist() == [[1], [1]]  # user 8 is index 1
    assert features["movie"].tolist() == [[2], [1]]
    assert features["genres"].tolist() == [[1.0, 1.0], [0.0, 0.0]]
    assert features["decade"].tolist() == [[11], [0]]
    assert {name: array.dtype for name, array in features.items()} == {
        "user": np.int64, "movie": np.int64, "genres": np.float32, "decade": np.int64}


def test_top_k_is_best_first_with_ties_in_catalog_order():
    found, scores = movies.top_k(np.array([3, 5, 8, 9]), np.array([0.2, 0.9, 0.2, 0.5], dtype=np.float32), 3)
    assert found.tolist() == [5, 9, 3]
    assert scores.tolist() == pytest.approx([0.9, 0.5, 0.2])
    assert movies.top_k(np.array([4, 1]), np.array([0.1, 0.3]), 10)[0].tolist() == [1, 4]  # fewer than K


def test_fallback_is_the_popular_movies_flagged(movie_catalog):
    answer = movie_catalog.fallback(2)
    assert answer["MOVIE_IDS"].tolist() == [30, 10]
    assert answer["TITLES"].tolist() == [b"C", b"A"]
    assert answer["SCORES"].tolist() == pytest.approx([1.0, 0.5])  # likes / users
    assert answer["POPULAR_FALLBACK"].tolist() == [True]


@pytest.mark.parametrize(
    ("users", "ks", "message"),
    [
        ([[7]], [[0]], f"K=0 is outside 1..{catalog.MAX_RECOMMENDATIONS}"),
        ([[7]], [[catalog.MAX_RECOMMENDATIONS + 1]], f"outside 1..{catalog.MAX_RECOMMENDATIONS}"),
        ([[7], [8]], [[5], [6]], "K differs between the rows of one request"),
        ([[7], [8]], [[5]], "USER_ID has 2 rows and K 1"),
    ],
)
def test_a_bad_request_is_refused_naming_what_is_wrong(users, ks, message):
    with pytest.raises(RequestError, match=message):
        movies.read_request(np.array(users, dtype=np.int64), np.array(ks, dtype=np.int32))


def test_a_good_request_gives_its_users_and_k():
    assert movies.read_request(np.array([[7], [99]]), np.array([[3], [3]])) == ([7, 99], 3)


def test_client_codec_builds_the_inputs_and_reads_the_answer():
    inputs = codec.recommendation_input([7, 8], 5)
    assert inputs["USER_ID"].tolist() == [[7], [8]] and inputs["USER_ID"].dtype == np.int64
    assert inputs["K"].tolist() == [[5], [5]] and inputs["K"].dtype == np.int32
    with pytest.raises(ValueError, match=f"within 1..{catalog.MAX_RECOMMENDATIONS}"):
        codec.recommendation_input(7, 0)
    found = codec.recommendations({"MOVIE_IDS": np.array([[30, 10]]), "TITLES": np.array([[b"C", b"A"]]),
                                   "SCORES": np.array([[0.9, 0.4]], dtype=np.float32),
                                   "POPULAR_FALLBACK": np.array([[False]])})
    assert found == [[codec.Recommendation(30, "C", pytest.approx(0.9), False),
                      codec.Recommendation(10, "A", pytest.approx(0.4), False)]]
