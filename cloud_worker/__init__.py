"""Tandem cloud pools: Ray Serve deployments of target-model replicas, each serving the Worker
service on its own gRPC port and registered with the router. All Ray code lives in this package."""
