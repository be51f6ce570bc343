"""Batches: ``flow`` and everything it runs on.

Decoding workers, batching and subsets, colour conversion and resizing, the runtime guard,
shard export and the framework adapters.
"""
