"""Pillow plugin: ``Image.open("x.irn")`` and ``im.save("x.irn", quality=75)`` after ``import irncodec``.

Registered the way Pillow's own format plugins are (open with a prefix check,
save, the ``.irn`` extension, a MIME type). Opening reads only the header (and,
for a file that carries an ICC profile or EXIF data, the rest of the file to
put them in ``info["icc_profile"]`` and ``info["exif"]``), so ``size``,
``mode`` and ``info`` are known at once; the network runs when the pixels are
first needed (``load()``, or any operation that loads), decoding as
:func:`irncodec.decode` does with the model the file names.

Saving takes :func:`irncodec.encode`'s options as keywords: ``quality``,
``codec``, ``scale``, ``model``, ``subsampling``, ``target_bpp``,
``keep_metadata``, ``frame``. As with Pillow's own single-image formats, an
image of several frames saves its current one unless ``frame`` says otherwise.
"""

from __future__ import annotations

from typing import IO, Any, BinaryIO, cast

from PIL import Image, ImageFile

from . import container

FORMAT = "IRN"
MIME = "image/x-irn"
_SAVE_OPTIONS = ("quality", "codec", "scale", "model", "subsampling", "target_bpp", "keep_metadata", "frame")


def _accept(prefix: bytes) -> bool:
    return prefix[:len(container.MAGIC)] == container.MAGIC


class IrnImageFile(ImageFile.ImageFile):
    """An ``.irn`` file as a Pillow image: header at open, full-size pixels at load."""

    format = FORMAT
    format_description = "irncodec invertible-rescaling image"

    def _open(self) -> None:
        assert self.fp is not None
        header = container.peek_header(cast(BinaryIO, self.fp))  # FormatError (an IrnError) names what is wrong
        self._size = (header.width, header.height)
        self._mode = header.mode
        scale = header.scale if header.network_size is None else round(header.effective_scale, 3)
        self.info.update({"irn_model": header.model, "irn_scale": scale, "irn_codec": header.codec,
                          "irn_quality": header.quality, "irn_version": header.version})
        if header.has_metadata:
            from .metadata import to_info

            self.fp.seek(0)
            self.info.update(to_info(container.read(cast(BinaryIO, self.fp)).metadata))
        self.tile = []  # no Pillow decoder: load() runs irncodec's

    def load(self) -> Any:
        if self._im is None and self.fp is not None:
            from .codec import decode

            self.fp.seek(0)
            data = self.fp.read()
            decoded = decode(data)
            self.im = decoded.im
            self._mode = decoded.mode
            if self._exclusive_fp:
                self.fp.close()
            self.fp = None
        return Image.Image.load(self)


def _save(im: Image.Image, fp: IO[bytes], filename: str | bytes) -> None:
    from .codec import encode

    unknown = sorted(set(im.encoderinfo) - set(_SAVE_OPTIONS) - {"format"})
    if unknown:
        from .errors import CodecError

        raise CodecError(f"saving as .irn does not take {', '.join(unknown)} "
                         f"(options: {', '.join(_SAVE_OPTIONS)})")
    options = {k: im.encoderinfo[k] for k in _SAVE_OPTIONS if k in im.encoderinfo}
    if getattr(im, "n_frames", 1) > 1:
        options.setdefault("frame", im.tell())
    fp.write(encode(im, **options))


def register() -> None:
    """Make Pillow open and save ``.irn`` files (done on ``import irncodec``)."""
    Image.register_open(FORMAT, IrnImageFile, _accept)
    Image.register_save(FORMAT, _save)
    Image.register_extension(FORMAT, ".irn")
    Image.register_mime(FORMAT, MIME)
