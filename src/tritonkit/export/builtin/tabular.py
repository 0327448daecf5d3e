"""The origins' tabular systems as source models: trained here, seeded, on real sklearn datasets.

- ``diabetes_regressor``: ``Pipeline(StandardScaler, PCA, LinearRegression)`` on ``load_diabetes``.
- ``cancer_classifier``: a small PyTorch feed-forward binary classifier on ``load_breast_cancer``,
  with feature standardization as buffers inside the module (so inside the exported graph).
"""

from __future__ import annotations

import numpy as np

from tritonkit.export.builtin import datasets

SEED = 0
PCA_COMPONENTS = 8  # of 10 features: held-out R² 0.69 (all 10 give 0.70, 4 give 0.65)
CANCER_HIDDEN = 16
CANCER_EPOCHS = 300  # full-batch Adam; held-out accuracy stops improving well before
CANCER_LEARNING_RATE = 1e-2


def train_diabetes_pipeline(split: datasets.Split | None = None):
    """Fits the scikit-learn pipeline on the first 400 diabetes rows."""
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LinearRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    split = split or datasets.diabetes()
    pipeline = Pipeline(
        [
            ("scale", StandardScaler()),
            ("pca", PCA(n_components=PCA_COMPONENTS, random_state=SEED)),
            ("regress", LinearRegression()),
        ]
    )
    return pipeline.fit(split.x_train, split.y_train)


def cancer_module(mean: np.ndarray, std: np.ndarray):
    """Builds the (untrained) classifier: standardize -> Linear -> ReLU -> Linear -> sigmoid."""
    import torch

    class CancerClassifier(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32))
            self.register_buffer("std", torch.as_tensor(std, dtype=torch.float32))
            self.body = torch.nn.Sequential(
                torch.nn.Linear(len(mean), CANCER_HIDDEN), torch.nn.ReLU(), torch.nn.Linear(CANCER_HIDDEN, 1)
            )

        def logits(self, features):
            return self.body((features - self.mean) / self.std)

        def forward(self, features):
            """Probability of sklearn's label 1 (benign), shape [batch, 1]."""
            return torch.sigmoid(self.logits(features))

    return CancerClassifier()


def train_cancer_classifier(split: datasets.Split | None = None):
    """Trains the classifier on the first 469 breast-cancer rows; returns it in eval mode."""
    import torch

    split = split or datasets.breast_cancer()
    torch.manual_seed(SEED)
    std = split.x_train.std(axis=0)
    model = cancer_module(split.x_train.mean(axis=0), np.where(std > 0, std, 1.0))
    features = torch.from_numpy(split.x_train)
    labels = torch.from_numpy(split.y_train.astype(np.float32)).unsqueeze(1)
    optimizer = torch.optim.Adam(model.parameters(), lr=CANCER_LEARNING_RATE, weight_decay=1e-4)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    model.train()
    for _ in range(CANCER_EPOCHS):
        optimizer.zero_grad()
        loss_fn(model.logits(features), labels).backward()
        optimizer.step()
    return model.eval()
