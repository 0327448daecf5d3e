"""Format converters: PyTorch, Hugging Face and scikit-learn models to ONNX, ONNX to INT8 and to TensorRT.

Each module is one conversion, named ``<source>2<target>`` (``quantize`` is ONNX FP32 to ONNX INT8); ``graph``
holds the ONNX checks they share. The built-in models (``export/builtin``) and a user's own (``export/add``)
go through the same converters.
"""
