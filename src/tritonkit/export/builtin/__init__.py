"""The project's own models: trained here, seeded, on real data, then exported through ``export/pipeline.py``.

``registry.py`` lists them with their pipelines; ``builders.py`` trains (or loads a checkpoint for) each one;
the other modules are the trainers and their data; ``generate.py`` makes every committed generated file.
"""
