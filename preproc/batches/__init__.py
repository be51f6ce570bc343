"""Batches: ``flow`` and everything it runs on.

Decoding workers, batching and subsets, colour conversion and resizing, the runtime guard,
shard export and the framework adapters (over batches, or over samples for a framework's own
loader workers), and the preprocessed cache.
"""
