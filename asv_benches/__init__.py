"""asv benchmarks of fastops (see README "Benchmarks").

The grid is built from the op table (``fastops.testing``): every op with a benchmark sample gets a
forward and a forward+backward benchmark at the "small" (100 elements: call overhead) and "large"
(16M elements) shapes, float32. ``FASTOPS_BENCH_FULL=1`` adds float64. Thread count is pinned to
``FASTOPS_BENCH_THREADS`` (default 2) for fastops and torch alike. JIT compilation happens in
``setup``, never in a timed body; compile and import time are their own ``track_`` benchmarks.
"""
