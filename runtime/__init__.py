"""What every Tandem server process shares: the onnxruntime model runtime (``runtime.llm``), the
Worker servicer, Fleet registration, health/reflection/metrics serving helpers, config loading and
model profiles (with the shipped stdlib pair as package data).

Needs the server dependencies (numpy, onnxruntime, tokenizers, prometheus-client, grpcio-health-
checking, grpcio-reflection); the client SDK (``tandem``) never imports it. Heavy modules import
lazily inside their submodules, so importing this package alone costs nothing.
"""
