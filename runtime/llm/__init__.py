"""Tandem's model runtime: tokenizer, onnxruntime decoder with per-session KV caches, sampling,
stopping, and (later) speculative accept/reject maths. Pure computation: no gRPC here.

Heavy imports (numpy, onnxruntime, tokenizers) happen in the submodules, so importing this package
alone costs nothing.
"""
