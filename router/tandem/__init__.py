"""The TANDEM loop and its draft-length controller: pure orchestration and arithmetic, no gRPC, no
Ray. The router and the device agent run the same code."""
