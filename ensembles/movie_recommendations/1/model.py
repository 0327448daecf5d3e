# USER_ID, K -> the top K unrated movies, scored by movie_deepfm in batched calls; see src/tritonkit/steps/movies.py.
from tritonkit.steps.steps import RecommenderStep as TritonPythonModel
