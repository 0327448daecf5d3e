"""The side-by-side benchmark (`make bench`): Flask + PyTorch baseline, our Triton deployment, and the
in-process ONNX Runtime ceiling, measured in one run on the same inputs. See bench/results/README.md."""
