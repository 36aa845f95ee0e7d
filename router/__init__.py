"""Tandem router: places each request on the device, the cloud or both, and streams the tokens."""
