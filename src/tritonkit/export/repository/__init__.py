"""Writing a Triton model repository: ``config.pbtxt`` through Triton's protobuf, ensembles, export records,
model cards, and the linter that checks a repository against its graphs."""
