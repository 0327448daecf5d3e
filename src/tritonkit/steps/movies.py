"""The recommender's catalog, candidates and top-K (no Triton imports): what ``movie_recommendations`` runs.

``movies.json`` (written by export beside the step, from ``export/builtin/recommender.py``) holds every movie with its
features, each known user's rated movies and the cold-start order. A known user gets the top K of every movie they
have not rated, by the DeepFM's score; an unknown user gets the most liked movies in training, flagged as such, with
the share of users who liked each as its score.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from tritonkit import catalog
from tritonkit.steps import RequestError


class MovieCatalog:
    def __init__(self, path: Path):
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        movies = data["movies"]
        self.movie_ids = np.array([movie["id"] for movie in movies], dtype=np.int64)
        self.titles = np.array([movie["title"].encode() for movie in movies], dtype=np.object_)
        genre_index = {name: index for index, name in enumerate(data["genres"])}
        self.genres = np.zeros((len(movies), len(genre_index)), dtype=np.float32)
        for row, movie in enumerate(movies):
            self.genres[row, [genre_index[name] for name in movie["genres"]]] = 1.0
        self.decades = np.array([[movie["decade"]] for movie in movies], dtype=np.int64)
        self.user_index = {int(user): index for index, user in enumerate(data["users"])}
        position = {int(movie): index for index, movie in enumerate(self.movie_ids)}
        self.rated = {int(user): np.array([position[m] for m in rated], dtype=np.int64)
                      for user, rated in data["rated"].items()}
        self.popular = np.array([position[m] for m, _ in data["popular"]], dtype=np.int64)
        self.popular_scores = np.array([likes for _, likes in data["popular"]], dtype=np.float32) / len(self.user_index)

    def candidates(self, user: int) -> np.ndarray:
        """Movie indices the user has not rated, in catalog order."""
        keep = np.ones(len(self.movie_ids), dtype=bool)
        keep[self.rated.get(user, [])] = False
        return np.flatnonzero(keep)

    def features(self, user: int, movies: np.ndarray) -> dict[str, np.ndarray]:
        """The scoring model's inputs for one known user and ``movies`` (indices)."""
        return {"user": np.full((len(movies), 1), self.user_index[user], dtype=np.int64),
                "movie": movies.reshape(-1, 1).astype(np.int64), "genres": self.genres[movies],
                "decade": self.decades[movies]}

    def answer(self, movies: np.ndarray, scores: np.ndarray, popular: bool) -> dict[str, np.ndarray]:
        """One row of the endpoint's outputs."""
        return {"MOVIE_IDS": self.movie_ids[movies], "TITLES": self.titles[movies],
                "SCORES": scores.astype(np.float32), "POPULAR_FALLBACK": np.array([popular])}

    def fallback(self, k: int) -> dict[str, np.ndarray]:
        return self.answer(self.popular[:k], self.popular_scores[:k], True)


def top_k(movies: np.ndarray, scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` best-scored movies, best first (ties: catalog order)."""
    best = np.lexsort((movies, -scores))[:k]  # a full sort (~0.5 ms for 9,000): ties at the cut stay in order
    return movies[best], scores[best]


def read_request(users: np.ndarray, ks: np.ndarray) -> tuple[list[int], int]:
    """USER_ID [rows, 1] and K [rows, 1] -> user ids and the request's one K; RequestError names what is wrong."""
    if users.shape[0] != ks.shape[0]:
        raise RequestError(f"USER_ID has {users.shape[0]} rows and K {ks.shape[0]}; send one K a user")
    values = {int(k) for k in ks.reshape(-1)}
    if len(values) != 1:
        raise RequestError(f"K differs between the rows of one request ({sorted(values)}); send one K for every "
                           "row, or one request per K")
    k = values.pop()
    if not 1 <= k <= catalog.MAX_RECOMMENDATIONS:
        raise RequestError(f"K={k} is outside 1..{catalog.MAX_RECOMMENDATIONS}; ask for at most "
                           f"{catalog.MAX_RECOMMENDATIONS} movies")
    return [int(user) for user in users.reshape(-1)], k
