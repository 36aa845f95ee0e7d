"""Server-side building blocks shared by the router, edge workers and cloud replicas: the Worker
servicer over a model runner, Fleet registration, health/reflection and the /metrics endpoint.

Unlike the SDK, this needs the server dependencies (numpy and onnxruntime via tandem.llm,
prometheus-client, grpcio-health-checking, grpcio-reflection).
"""
