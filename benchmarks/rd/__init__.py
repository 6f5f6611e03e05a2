"""Rate-distortion benchmark: irncodec against Pillow codecs and plain bicubic rescaling.

    python -m benchmarks.rd --qf 30..90                    # Kodak, x2 and x4, JPEG, WebP and entropy LR
    python benchmarks/rd_curve.py --qf 50,90 --limit 2 --model my-x2.safetensors   # the same command

Rate is the real size of every encoded file (for irncodec the whole ``.irn``,
header included) in bits per HR pixel. Distortion is measured on 8-bit RGB per
image and then averaged over images, as CompressAI reports Kodak results.
Y-PSNR crops ``scale`` border pixels (1 for the full-size codecs); MS-SSIM
is NaN for images of 160 px or less a side and left out of that mean.
DISTS, at full size, is added when its weights have been fetched once with
``python benchmarks/get_dists_weights.py`` (``docs/metrics.md``); nothing is
downloaded during a run.
Every baseline runs in the same process on the same images.

``irncodec-envelope`` is the codec's best mean point at each rate over every
irncodec series measured (scales, LR codecs, qualities): what a user who picks
the best fixed setting for a size gets. ``bd_rate.md`` also compares it (and
each series) with the full-size codecs and bicubic+JPEG over ``--bd-range``
(default 0.1-0.5 bpp, where downscaling pays), not just over wherever two
curves happen to overlap. Outputs in ``--out``: ``rd_points.csv``,
``rd_summary.json``, ``rd_curve.png`` and ``bd_rate.md``.

One module per job: :mod:`.settings` (quality lists; which methods run at
which qualities), :mod:`.measure` (encode, decode, score, on every image),
:mod:`.rows` (per-image rows, their means, curves), :mod:`.bd` (BD-rate and
the envelope; no I/O), :mod:`.plots` (the RD plot), :mod:`.report` (the
output files and markdown tables) and :mod:`.cli` (the command).
"""
