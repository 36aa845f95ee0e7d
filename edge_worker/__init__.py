"""Tandem edge worker: the Worker service over the draft model on a user's device."""
