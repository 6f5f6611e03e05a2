"""The learned LR entropy coder: real bitstreams that decode bit-exactly, and hostile payloads."""

import dataclasses

import numpy as np
import pytest
import torch
from PIL import Image

import irncodec
from irncodec import container, zoo
from irncodec.errors import CodecError, ModelError
from irncodec.lr_codecs import get_codec
from irncodec.models import lr_coder
from irncodec.models.lr_coder import LRHyperprior

from .conftest import photo_like


@pytest.fixture(scope="module")
def coder() -> LRHyperprior:
    torch.manual_seed(0)
    model = LRHyperprior(channels=8, filter_channels=4).eval()
    model.update(force=True)
    return model


def lr_tensor(width: int = 40, height: int = 36, seed: int = 0) -> torch.Tensor:
    pixels = np.asarray(photo_like(width, height, seed))
    return torch.tensor(pixels).permute(2, 0, 1)[None].float() / 255


def test_stream_decodes_to_exactly_the_encoders_lr_image(coder):
    x = lr_tensor()
    with torch.no_grad():
        coded = coder.compress(x)
        decoded = coder.decompress(coded.payload, (36, 40))
    assert decoded.shape == (1, 3, 36, 40)
    assert torch.equal(decoded, coded.lr_hat)
    with torch.no_grad():  # and the same bytes every time
        assert coder.compress(x).payload == coded.payload


def test_pad_to_blocks_repeats_the_last_row_and_column():
    """Padding to multiples of 16 goes below and to the right only, copying the edge pixels,
    so the image stays at the top left where the decoder crops it."""
    x = torch.arange(2 * 3 * 18 * 17, dtype=torch.float32).view(2, 3, 18, 17)
    padded, size = lr_coder.pad_to_blocks(x)
    assert size == (18, 17) and padded.shape == (2, 3, 32, 32)
    expected = x[:, :, [*range(18)] + [17] * 14][:, :, :, [*range(17)] + [16] * 15]
    assert torch.equal(padded, expected)
    aligned = torch.rand(1, 3, 16, 32)
    assert lr_coder.pad_to_blocks(aligned)[0] is aligned


def test_compress_codes_one_image_at_a_time(coder):
    with pytest.raises(ValueError) as info, torch.no_grad():
        coder.compress(torch.cat([lr_tensor(), lr_tensor(seed=1)]))
    assert str(info.value) == "compress codes one image at a time"


def test_a_coder_alone_fits_its_buffers_to_weights_without_a_prefix(coder):
    """fit_buffers's prefix defaults to none: a bare coder's own state dict."""
    torch.manual_seed(1)
    other = LRHyperprior(channels=8, filter_channels=4)
    state = coder.state_dict()
    assert other.gaussian_conditional._quantized_cdf.shape != state["gaussian_conditional._quantized_cdf"].shape
    other.fit_buffers(state)
    other.load_state_dict(state)
    with torch.no_grad():
        assert other.eval().compress(lr_tensor()).payload == coder.compress(lr_tensor()).payload


def test_tiles_decode_exactly_and_leave_the_size_alone(coder, monkeypatch):
    monkeypatch.setattr(lr_coder, "Y_TILE", 4)  # 40x36 LR -> 12x12 latents -> 9 tiles
    assert len(lr_coder.latent_tiles((12, 12))) == 9
    x = lr_tensor()
    with torch.no_grad():
        coded = coder.compress(x)
        assert torch.equal(coder.decompress(coded.payload, (36, 40)), coded.lr_hat)


def test_training_forward_gives_likelihoods_and_gradients(coder):
    x = lr_tensor(20, 12).requires_grad_(True)
    coder.train()
    try:
        lr_hat, likelihoods = coder(x)
    finally:
        coder.eval()
    assert lr_hat.shape == x.shape
    assert set(likelihoods) == {"y", "z"}
    assert all(((v > 0) & (v <= 1)).all() for v in likelihoods.values())
    bits = sum(-torch.log2(v).sum() for v in likelihoods.values())
    (bits + lr_hat.sum()).backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_training_forward_matches_an_independent_computation(coder):
    """The latents are rounded around the hyperprior's means (y_hat = round(y - mu) + mu)
    and, out of training, their likelihood is the Gaussian's mass over the unit bin around
    that rounded value, as CompressAI defines it, computed here from the CDF (scales
    bounded at 0.11, mass at 1e-9)."""
    x = lr_tensor(32, 32)
    with torch.no_grad():
        lr_hat, likelihoods = coder(x)
        y = coder.g_a(x)
        z_hat, _ = coder.entropy_bottleneck(coder.h_a(y))
        means, scales = coder.h_s(z_hat).chunk(2, 1)
        assert means.abs().mean() > 0.01  # off-centre means, or the test could not see them
        normal = torch.distributions.Normal(0.0, 1.0)
        scales, dist = scales.clamp(min=0.11), torch.round(y - means).abs()
        mass = normal.cdf((0.5 - dist) / scales) - normal.cdf((-0.5 - dist) / scales)
        assert torch.allclose(likelihoods["y"], mass.clamp(min=1e-9), rtol=1e-4, atol=1e-7)
        assert torch.allclose(lr_hat, coder.g_s(torch.round(y - means) + means), atol=1e-6)


def test_framing_errors_are_codec_errors(coder):
    codec = get_codec("entropy", coder=coder)
    image = photo_like(40, 36)
    payload = codec.encode(image, 2)
    assert codec.decode(payload, (40, 36)).size == (40, 36)
    for bad in (payload[:-1], payload + b"\x00", payload[:5], b"", payload[:8]):
        with pytest.raises(CodecError, match="entropy-coded"):
            codec.decode(bad, (40, 36))


def test_framing_error_messages(coder):
    """Each way a stream's framing can be wrong, with its own message (one tile, after a step
    block: a stream whose first word is 0 starts with one, so only then can z_len be 0)."""
    with torch.no_grad():
        payload = coder.compress(lr_tensor(), 1.5).payload
    step = payload[:lr_coder.STEP_BLOCK.size]
    at = len(step) + lr_coder._LENGTHS.size
    z_len, y_len = lr_coder._LENGTHS.unpack_from(payload, len(step))
    body = payload[at:]
    cases = [
        (step, "the stream ends before its last tile"),
        (payload[:at - 1], "the stream ends before its last tile"),
        (payload[:at], "a tile's length runs past the end of the stream"),  # lengths, then nothing
        (payload[:-1], "a tile's length runs past the end of the stream"),
        (step + lr_coder._LENGTHS.pack(0, z_len + y_len) + body, "a tile's length runs past the end of the stream"),
        (step + lr_coder._LENGTHS.pack(z_len + y_len, 0) + body, "a tile's length runs past the end of the stream"),
        (step + lr_coder._LENGTHS.pack(z_len + 1, y_len) + body, "a tile's length runs past the end of the stream"),
        (payload + b"\x00\x00\x00", "3 bytes follow the last tile"),
    ]
    for bad, message in cases:
        with pytest.raises(lr_coder.StreamError) as info:
            coder.decompress(bad, (36, 40))
        assert str(info.value) == message, bad[:12]


def test_garbage_streams_never_crash(coder):
    """CompressAI's rANS decoder trusts its input; random streams must not read out of bounds."""
    codec = get_codec("entropy", coder=coder)
    rng = np.random.default_rng(0)
    for i in range(200):
        z_len, y_len = int(rng.integers(1, 40)), int(rng.integers(1, 400))
        body = rng.integers(0, 256, z_len + y_len, dtype=np.uint8).tobytes()
        if i % 2:
            body = bytes([255]) * len(body)  # all-ones: the longest bypass runs
        payload = lr_coder._LENGTHS.pack(z_len, y_len) + body
        image = codec.decode(payload, (40, 36))
        assert image.size == (40, 36) and image.mode == "RGB"


@pytest.mark.parametrize("stream_bytes, symbols", [(0, 1), (1, 0), (10, 7), (4000, 30000)])
def test_the_padding_covers_the_decoders_worst_case_reads(stream_bytes, symbols):
    """The bound the rANS decoder can read to, from its reads: two 32-bit words per symbol, and
    one per 4-bit bypass chunk, at most 15 per nibble of the stream (2 per byte) and of the
    64-bit state (16); the stream itself comes first, unchanged."""
    stream = bytes(range(256)) * (stream_bytes // 256) + bytes(stream_bytes % 256)
    padded = lr_coder._padded(stream, symbols)
    worst_words = 2 * symbols + 15 * (2 * stream_bytes + 16)
    assert padded[:stream_bytes] == stream and len(padded) - stream_bytes >= 4 * worst_words
    assert not any(padded[stream_bytes:])


def test_each_stream_is_padded_for_at_least_its_own_symbols(coder, monkeypatch):
    """On a tall tile (latents 28x4, hyper-latents 7x1): the hyper-latent stream's padding counts
    both sides of its tile, the latent stream's one symbol per latent."""
    counts = []
    real = lr_coder._padded
    monkeypatch.setattr(lr_coder, "_padded", lambda stream, symbols: counts.append(symbols) or real(stream, symbols))
    with torch.no_grad():
        coded = coder.compress(lr_tensor(16, 112))
        coder.decompress(coded.payload, (112, 16))
    z_symbols = coder.entropy_bottleneck.channels * 7 * 1
    assert len(counts) == 2 and counts[0] >= z_symbols and counts[1] == lr_coder.LATENTS * 28 * 4


def test_update_builds_tables_once_and_leaves_the_quantiles_unless_asked():
    """As CompressAI's ``update``: tables are built once (again only with ``force``), and the
    learned quantiles are kept by default; solving them is a choice (``update_quantiles``)."""
    torch.manual_seed(3)
    fresh = LRHyperprior(channels=8, filter_channels=4).eval()
    quantiles = fresh.entropy_bottleneck.quantiles.detach().clone()
    assert fresh.update() is True
    assert torch.equal(fresh.entropy_bottleneck.quantiles, quantiles)
    assert torch.equal(fresh.gaussian_conditional.scale_table, lr_coder.SCALE_TABLE)
    assert fresh.update() is False and fresh.update(force=True) is True
    table = torch.tensor([0.25, 1.0, 4.0])
    assert fresh.update(table, force=True) is True  # a table of one's own is used
    assert torch.equal(fresh.gaussian_conditional.scale_table, table)
    assert fresh.update(force=True, update_quantiles=True) is True
    assert not torch.equal(fresh.entropy_bottleneck.quantiles, quantiles)


def test_codec_needs_a_coder_and_a_rate_level(coder):
    with pytest.raises(CodecError) as info:
        get_codec("entropy").encode(photo_like(8, 8), 2)
    assert str(info.value) == ("the entropy LR codec needs a model with a trained entropy coder "
                               "(see 'irncodec models')")
    assert get_codec("entropy").step == 1.0  # no step asked for: the coder's own steps
    with pytest.raises(CodecError, match=r"quality must be 1\.\.8"):
        get_codec("entropy", coder=coder).encode(photo_like(8, 8), 0)


def test_round_trip_through_irn_files(tiny_entropy_weights):
    model = tiny_entropy_weights[2]
    image = photo_like(50, 34)
    data = irncodec.encode(image, codec="entropy", quality=3, model=model)
    header = container.unpack(data).header
    assert (header.codec, header.quality) == ("entropy", 3)
    out = irncodec.decode(data, model=model)
    assert out.size == image.size and out.mode == "RGB"
    # the LR the file holds is exactly the one the encoder reconstructed
    net = zoo.load_model(model)
    lr, _, _ = irncodec.downscale(net, image)
    _, expected = get_codec("entropy", coder=net.lr_coder).encode_with_reconstruction(lr, 3)
    assert irncodec.decode_lr(data, model=model).tobytes() == expected.tobytes()


def test_decode_lr_loads_the_coder_on_the_device_asked_for(tiny_entropy_weights, model_loads):
    model = tiny_entropy_weights[2]
    data = irncodec.encode(photo_like(20, 14), codec="entropy", quality=1, model=model)
    model_loads.clear()
    irncodec.decode_lr(data, model=model, device="cuda:3")
    assert model_loads == ["cuda:3"]


def test_a_model_without_a_coder_cannot_use_the_entropy_codec(tiny_weights, tiny_entropy_weights):
    with pytest.raises(ModelError) as info:
        irncodec.encode(photo_like(16, 16), codec="entropy", model=tiny_weights[2])
    assert str(info.value) == (f"model '{tiny_weights[2]}' has no entropy coder: the entropy codec needs an "
                               "irn-x*-entropy-q* model (see 'irncodec models')")
    data = irncodec.encode(photo_like(16, 16), codec="entropy", model=tiny_entropy_weights[2])
    with pytest.raises(ModelError, match="other weights"):  # the file's fingerprint says so first
        irncodec.decode(data, model=tiny_weights[2])
    irn = container.unpack(data)
    v1 = container.IrnFile(dataclasses.replace(irn.header, fingerprint=None), irn.payload)
    with pytest.raises(ModelError, match="no entropy coder"):  # a version-1 file has no fingerprint
        irncodec.decode(v1, model=tiny_weights[2])
    # other codecs work with an entropy model: it is an IRN too
    assert irncodec.decode(irncodec.encode(photo_like(16, 16), codec="jpeg", model=tiny_entropy_weights[2]),
                           model=tiny_entropy_weights[2]).size == (16, 16)


def test_for_model_passes_the_codecs_options_on(tiny_entropy_weights):
    from irncodec.lr_codecs.entropy import EntropyCodec

    net = zoo.load_model(tiny_entropy_weights[2])
    codec = EntropyCodec.for_model(net, "tiny", step=1.5)
    assert codec.coder is net.lr_coder and codec.step == 1.5


def test_unshipped_rate_level_is_a_model_error():
    with pytest.raises(ModelError, match="entropy model for quality 7"):
        zoo.default_model(2, "entropy", 7)


def test_weights_keep_cdf_tables_and_fp32_entropy_parameters(tiny_entropy_weights):
    from safetensors import safe_open

    with safe_open(tiny_entropy_weights[2], framework="pt") as f:
        dtypes = {k: f.get_tensor(k).dtype for k in f.keys()}  # noqa: SIM118 (safe_open is not iterable)
    assert dtypes["lr_coder.entropy_bottleneck._quantized_cdf"] == torch.int32
    assert dtypes["lr_coder.entropy_bottleneck.quantiles"] == torch.float32
    assert dtypes["lr_coder.analysis.weight"] == torch.float16
    assert zoo.load_model(tiny_entropy_weights[2]).lr_coder.is_ready


def test_lr_is_bit_exact_across_processes(tmp_path, tiny_entropy_weights):
    """Encode in this process, decode the LR in a new one: the same pixels the encoder saw."""
    import subprocess
    import sys

    model = tiny_entropy_weights[2]
    irn, lr = tmp_path / "x.irn", tmp_path / "lr.png"
    image = photo_like(64, 48)
    irn.write_bytes(irncodec.encode(image, codec="entropy", quality=1, model=model))
    subprocess.run([sys.executable, "-m", "irncodec", "decode", str(irn), str(lr), "--lr-only", "-m", model],
                   check=True)
    net = zoo.load_model(model)
    downscaled, _, _ = irncodec.downscale(net, image)
    payload, expected = get_codec("entropy", coder=net.lr_coder).encode_with_reconstruction(downscaled, 1)
    assert container.unpack(irn.read_bytes()).payload == payload
    assert Image.open(lr).tobytes() == expected.tobytes()


def test_post_filter_in_strips_equals_the_whole_image(monkeypatch):
    torch.manual_seed(1)
    coder = LRHyperprior(channels=8, filter_channels=4).eval()
    for p in coder.post_filter.parameters():  # a filter that does something (it starts at zero)
        p.data.normal_(0, 0.1)
    y = torch.randn(1, lr_coder.LATENTS, 10, 6)
    with torch.no_grad():
        whole = coder.g_s(y)
        monkeypatch.setattr(lr_coder, "STRIP", 7)  # 40 rows -> 6 strips
        strips = coder.g_s(y)
    assert not torch.equal(whole, coder.synthesis(y * torch.exp(lr_coder.STEP_GAIN * coder.log_step)))
    assert torch.allclose(whole, strips, atol=1e-6)


def test_in_strips_runs_the_layer_on_strips_of_at_most_strip_rows_and_their_halo(monkeypatch):
    """Only a layer's input of STRIP rows and HALO more each side is in memory at once;
    an image of at most STRIP rows goes through whole."""
    monkeypatch.setattr(lr_coder, "STRIP", 8)
    heights = []

    def layer(x):
        heights.append(x.shape[-2])
        return torch.nn.functional.avg_pool2d(x, 7, stride=1, padding=3)  # receptive radius 3 = HALO

    x = torch.rand(1, 3, 21, 5)
    assert torch.allclose(lr_coder.in_strips(layer, x), layer(x), atol=1e-6)
    assert heights[:-1] == [8 + 3, 3 + 8 + 3, 3 + 5]  # rows 0-7, 8-15 and 16-20, with halos
    heights.clear()
    lr_coder.in_strips(layer, x[:, :, :8])
    assert heights == [8]


def test_the_float_synthesis_clamps_to_black_and_white(coder):
    y = torch.randn(1, lr_coder.LATENTS, 4, 6, generator=torch.Generator().manual_seed(5)) * 20  # far out of range
    with torch.no_grad():
        lr = coder.synthesize(y, (16, 24))
        assert torch.equal(lr, coder.g_s(y).clamp(0, 1))
    assert (lr == 0).any() and (lr == 1).any() and ((lr > 0) & (lr < 1)).any()


@pytest.mark.parametrize("size", [(1, 1), (3, 5), (17, 13), (300, 7)])
@pytest.mark.parametrize("mode", ["RGB", "L", "RGBA"])
def test_odd_sizes_and_modes_round_trip(tiny_entropy_weights, size, mode):
    image = photo_like(*size).convert(mode)
    out = irncodec.decode(irncodec.encode(image, codec="entropy", model=tiny_entropy_weights[2]),
                          model=tiny_entropy_weights[2])
    assert (out.size, out.mode) == (image.size, image.mode)


def test_a_step_trades_bits_for_quality_and_decodes_exactly(coder):
    """Coarser steps: fewer bytes, a worse LR image; every stream decodes to the encoder's image."""
    x = lr_tensor(64, 48)
    sizes, errors = [], []
    with torch.no_grad():
        for step in (0.6, 1.0, 1.7):
            coded = coder.compress(x, step)
            assert torch.equal(coder.decompress(coded.payload, (48, 64)), coded.lr_hat)
            assert lr_coder.stream_step(coded.payload) == step
            sizes.append(len(coded.payload))
            errors.append(float(((coded.lr_hat - x) ** 2).mean()))
        assert coder.compress(x, 1.0).payload == coder.compress(x).payload  # step 1: no step block
    assert sizes[0] > sizes[1] > sizes[2] and errors[0] < errors[1] < errors[2]


def test_format_version_is_1_unless_the_stream_has_a_step(coder):
    """Readers of every version decode a stream without a step block, and so do they a
    payload that is no stream at all (the decoder refuses it, whatever the version)."""
    codec = get_codec("entropy", coder=coder)
    with torch.no_grad():
        x = lr_tensor(16, 16)
        assert codec.format_version(coder.compress(x).payload) == 1
        assert codec.format_version(coder.compress(x, 1.5).payload) == 3
    assert codec.format_version(bytes(5)) == 1  # cut inside a step block
    assert codec.format_version(bytes(6)) == 1  # a step block with step 0


def test_the_step_block_is_the_documented_bytes(coder):
    """docs/format.md: u32 0 where the first z_len would be, then u16 step in thousandths."""
    x = lr_tensor()
    with torch.no_grad():
        plain, stepped = coder.compress(x).payload, coder.compress(x, 1.25).payload
        quantised = coder.compress(x, 1.2504).payload  # steps are kept in thousandths
    assert stepped[:6] == bytes([0, 0, 0, 0]) + (1250).to_bytes(2, "little") and quantised == stepped
    assert int.from_bytes(plain[:4], "little") > 0
    # the block only sets the step: the same tiles after another block decode at that step
    with torch.no_grad():
        other = coder.compress(x, 1.5).payload
        relabelled = other[:4] + (1250).to_bytes(2, "little") + other[6:]
        assert not torch.equal(coder.decompress(relabelled, (36, 40)), coder.decompress(other, (36, 40)))


@pytest.mark.parametrize("block", [b"\0\0\0\0", b"\0\0\0\0\xe8", b"\0\0\0\0" + (1000).to_bytes(2, "little"),
                                   b"\0\0\0\0" + (249).to_bytes(2, "little"),
                                   b"\0\0\0\0" + (4001).to_bytes(2, "little")])
def test_bad_step_blocks_are_codec_errors(coder, block):
    codec = get_codec("entropy", coder=coder)
    tiles = codec.encode(photo_like(40, 36), 2)
    stream = block if len(block) < 6 else block + tiles  # a block cut short ends the stream
    with pytest.raises(CodecError, match=r"entropy-coded stream: .*step"):
        codec.decode(stream, (40, 36))


@pytest.mark.parametrize("step", [0.2, 4.01, float("nan"), float("inf"), "1", True, None])
def test_step_option_is_checked(coder, step):
    with pytest.raises(CodecError, match="step multiplier"):
        get_codec("entropy", coder=coder, step=step)


def test_a_file_with_a_step_is_version_3_and_decodes(tiny_entropy_weights):
    from irncodec.pipeline import Source, downscale

    model = tiny_entropy_weights[2]
    net = zoo.load_model(model)
    source = Source(photo_like(50, 34))
    lr, pad_x, pad_y = downscale(net, source.rgb)
    for step, version in ((1.0, 2), (1.4, 3)):
        lr_codec = get_codec("entropy", coder=net.lr_coder, step=step)
        payload, expected = lr_codec.encode_with_reconstruction(lr, 3)
        data = container.pack(source.file(net, model, lr_codec, 3, payload, (pad_x, pad_y)))
        assert data[4] == version
        assert irncodec.decode_lr(data, model=model).tobytes() == expected.tobytes()
        assert irncodec.decode(data, model=model).size == (50, 34)


def test_step_block_range_and_messages():
    """Steps 0.25 and 4 are the ends of the range and allowed; a block cut short or out of
    range says so exactly."""
    from irncodec.lr_codecs.step_block import StreamError, stream_step

    block = lambda milli: bytes(4) + milli.to_bytes(2, "little")
    assert stream_step(block(250)) == 0.25 and stream_step(block(4000)) == 4.0
    assert stream_step(block(1500)) == 1.5 and stream_step(block(1500) + b"tile") == 1.5
    assert stream_step(b"\x00\x00\x00\x80" + bytes(2)) == 1.0  # first word 2**31: a z_len, no block
    for bad, message in ((bytes(5), "the stream ends inside its step block"),
                         (block(249), "step multiplier 0.249 is outside 0.25 to 4 (or 1, which has no step block)"),
                         (block(4001), "step multiplier 4.001 is outside 0.25 to 4 (or 1, which has no step block)"),
                         (block(1000), "step multiplier 1 is outside 0.25 to 4 (or 1, which has no step block)")):
        with pytest.raises(StreamError) as info:
            stream_step(bad)
        assert str(info.value) == message


def test_the_step_option_takes_the_ends_of_its_range_and_says_what_it_is():
    from irncodec.lr_codecs.step_block import step_milli

    assert (step_milli(0.25), step_milli(4), step_milli(1.2345)) == (250, 4000, 1234)
    for bad in (0.2494, 4.0006):
        with pytest.raises(ValueError) as info:
            step_milli(bad)
        assert str(info.value) == f"the step multiplier must be 0.25 to 4, got {bad:g}"


def test_entropy_codec_refuses_other_modes_by_name(coder):
    with pytest.raises(CodecError) as info:
        get_codec("entropy", coder=coder).encode_with_reconstruction(Image.new("L", (16, 16)), 1)
    assert str(info.value) == "LR codecs store 8-bit RGB images, got mode 'L'"


def test_the_transform_is_the_orthonormal_colour_dct():
    """The analysis basis against scipy's orthonormal DCT-II and the luma/chroma-difference
    rows, computed in float64 and rounded once: a basis built in float32 or on another grid
    fails."""
    from scipy.fft import dct

    basis_1d = dct(np.eye(4), axis=0, norm="ortho")  # [frequency, pixel]
    colour = np.array([[1, 1, 1], [1, 0, -1], [1, -2, 1]]) / np.sqrt([[3], [2], [6]])
    reference = np.einsum("ck,ui,vj->cuvkij", colour, basis_1d, basis_1d).reshape(48, 3, 4, 4)
    weights = lr_coder.dct_transform()
    assert weights.dtype == torch.float32
    assert torch.equal(weights, torch.from_numpy(reference).float())
    flat = weights.double().reshape(48, 48)
    assert torch.allclose(flat @ flat.T, torch.eye(48, dtype=torch.float64), atol=1e-6)


def test_a_coder_built_alone_has_the_sizes_an_irn_config_gives_it():
    """``LRHyperprior()`` and ``IRNConfig()`` name the same default coder."""
    from irncodec.models import IRNConfig

    config = IRNConfig()
    alone = LRHyperprior()
    assert (config.coder_channels, config.coder_filter_channels) == (64, 32)
    assert alone.entropy_bottleneck.channels == config.coder_channels
    assert alone.post_filter[0].out_channels == config.coder_filter_channels


@pytest.mark.parametrize("training", [False, True])
def test_synthesis_adds_the_post_filter_to_the_inverse_transform(training):
    """g_s = inverse DCT of the rescaled latents + post-filter of it, computed here with
    plain convolutions (a trained post-filter: a fresh one is zero)."""
    import torch.nn.functional as F

    torch.manual_seed(3)
    model = LRHyperprior(channels=8, filter_channels=4)
    for p in model.post_filter.parameters():
        p.data.normal_(0, 0.2)
    model.log_step.data.normal_(0, 0.1)
    y_hat = torch.randn(1, lr_coder.LATENTS, 5, 6)
    with torch.no_grad():
        basis = lr_coder.dct_transform()
        x = F.conv_transpose2d(y_hat * torch.exp(lr_coder.STEP_GAIN * model.log_step), basis, stride=4)
        c1, c2, c3 = (m for m in model.post_filter if isinstance(m, torch.nn.Conv2d))
        h = F.leaky_relu(F.conv2d(x, c1.weight, c1.bias, padding=1), 0.01)
        h = F.leaky_relu(F.conv2d(h, c2.weight, c2.bias, padding=1), 0.01)
        expected = x + F.conv2d(h, c3.weight, c3.bias, padding=1)
        assert (expected - x).abs().mean() > 0.01  # the filter does change the image
        model.train(training)
        assert torch.allclose(model.g_s(y_hat), expected, atol=1e-5)
