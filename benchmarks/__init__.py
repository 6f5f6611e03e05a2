"""irncodec's benchmarks.

:mod:`.rd` is the rate-distortion harness (``python -m benchmarks.rd``, or
``python benchmarks/rd_curve.py``); :mod:`.common` holds what every benchmark
shares (paths, datasets, model choice, the ``--scale`` option). Every other
module is one benchmark, run as a script (``python benchmarks/NAME.py``) or
as ``python -m benchmarks.NAME``.
"""
