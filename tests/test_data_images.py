"""Image datasets: MNIST IDX and CIFAR-10 binary files built here with NumPy, served from 127.0.0.1.

Ground truth is what the test wrote: pixels and classes are compared exactly (float32 of
byte/255 is the same IEEE operation on both sides), the CHW→HWC transpose is checked
against an explicit loop over record offsets, and binary labels against the paper's class
lists. No test touches the network except a server on 127.0.0.1.
"""

import functools
import gzip
import hashlib
import http.server
import io
import os
import socket
import struct
import sys
import tarfile
import threading

import numpy as np
import pytest

from jaxadv import _atomic, data
from jaxadv.data import cifar10, digits, mnist

RNG = np.random.default_rng(0)


@pytest.fixture(autouse=True)
def _isolated_dirs(tmp_path, monkeypatch):
    """Neither the user's cache nor $JAXADV_DATA_DIR is ever read or written."""
    monkeypatch.delenv("JAXADV_DATA_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))


# ---------------------------------------------------------------- file builders (independent of the loaders)


def idx_bytes(array, type_code=0x08, dtype=">u1"):
    array = np.asarray(array)
    header = bytes([0, 0, type_code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(dtype).tobytes()


def write(path, payload, gz=False):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(payload) if gz else payload)
    return path


def make_mnist(directory, split="train", n=7, gz=False):
    """Writes one MNIST split; returns (pixels uint8 (n, 28, 28), classes uint8 (n,))."""
    prefix = "train" if split == "train" else "t10k"
    pixels = RNG.integers(0, 256, (n, 28, 28), dtype=np.uint8)
    classes = (np.arange(n) % 10).astype(np.uint8)
    ext = ".gz" if gz else ""
    write(directory / f"{prefix}-images-idx3-ubyte{ext}", idx_bytes(pixels), gz)
    write(directory / f"{prefix}-labels-idx1-ubyte{ext}", idx_bytes(classes), gz)
    return pixels, classes


def cifar_bytes(pixels_hwc, classes):
    """Records as documented: the class byte, then the red, green and blue 32×32 planes row by row."""
    out = bytearray()
    for img, c in zip(pixels_hwc, classes):
        out.append(int(c))
        for ch in range(3):
            out += img[:, :, ch].tobytes()
    return bytes(out)


def make_cifar(directory, sizes=(2, 3, 1, 2, 1), n_test=3):
    """Writes five training batches and a test batch; returns {split: (pixels HWC, classes)}."""
    out = {}
    for split, names, counts in (
        ("train", cifar10.FILES["train"], sizes),
        ("test", cifar10.FILES["test"], (n_test,)),
    ):
        pix, cls = [], []
        for name, n in zip(names, counts):
            p = RNG.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
            c = RNG.integers(0, 10, n, dtype=np.uint8)
            write(directory / name, cifar_bytes(p, c))
            pix.append(p)
            cls.append(c)
        out[split] = (np.concatenate(pix), np.concatenate(cls))
    return out


def cifar_archive(src_dir, extra=()):
    """A cifar-10-binary.tar.gz with the distribution's layout, plus ``extra`` (TarInfo, bytes) members."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        tar.add(src_dir, arcname="cifar-10-batches-bin")
        for info, payload in extra:
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    return buf.getvalue()


def files_under(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()) if root.exists() else []


def sha256(payload):
    return hashlib.sha256(payload).hexdigest()


# ---------------------------------------------------------------- MNIST


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("sub", ["mnist", "MNIST/raw", ""])
def test_mnist_pixels_and_labels_exactly(tmp_path, gz, sub):
    written = {s: make_mnist(tmp_path / sub, s, n=n, gz=gz) for s, n in (("train", 11), ("test", 4))}
    for split, (pixels, classes) in written.items():
        ds = data.load("mnist", split, data_dir=tmp_path)
        assert ds.images.shape == (len(pixels), 28, 28, 1) and ds.images.dtype == np.float32
        np.testing.assert_array_equal(ds.images[..., 0], pixels.astype(np.float32) / np.float32(255))
        assert ds.labels.dtype == np.int32 and ds.classes.dtype == np.int32
        np.testing.assert_array_equal(ds.classes, classes)
        # Odd vs even: even digits → 0, odd → 1.
        np.testing.assert_array_equal(
            ds.labels, [{0: 0, 1: 1, 2: 0, 3: 1, 4: 0, 5: 1, 6: 0, 7: 1, 8: 0, 9: 1}[c] for c in classes]
        )
        assert (ds.name, ds.split) == ("mnist", split)
        assert ds.images.min() >= 0 and ds.images.max() <= 1


def test_mnist_gzip_is_detected_from_content_not_name(tmp_path):
    # A browser may decompress a .gz and keep its name; the reverse happens too.
    pixels = RNG.integers(0, 256, (3, 28, 28), dtype=np.uint8)
    write(tmp_path / "train-images-idx3-ubyte.gz", idx_bytes(pixels), gz=False)
    write(tmp_path / "train-labels-idx1-ubyte", idx_bytes([1, 2, 3]), gz=True)
    ds = data.load("mnist", "train", data_dir=tmp_path)
    np.testing.assert_array_equal(ds.images[..., 0] * 255, pixels)
    np.testing.assert_array_equal(ds.classes, [1, 2, 3])


@pytest.mark.parametrize(
    "dtype, code", [(">u1", 0x08), (">i1", 0x09), (">i2", 0x0B), (">i4", 0x0C), (">f4", 0x0D), (">f8", 0x0E)]
)
def test_read_idx_every_type(tmp_path, dtype, code):
    a = RNG.integers(-100, 100, (2, 3, 4)) if dtype != ">u1" else RNG.integers(0, 256, (2, 3, 4))
    path = write(tmp_path / "x.idx", idx_bytes(a, code, dtype))
    out = mnist.read_idx(str(path))
    assert out.shape == (2, 3, 4)
    np.testing.assert_array_equal(out, a.astype(dtype))


# ---------------------------------------------------------------- CIFAR-10


@pytest.mark.parametrize("sub", ["cifar-10-batches-bin", ""])
def test_cifar_pixels_transpose_and_labels_exactly(tmp_path, sub):
    written = make_cifar(tmp_path / sub)
    for split, (pixels, classes) in written.items():
        ds = data.load("cifar10", split, data_dir=tmp_path)
        assert ds.images.shape == (len(pixels), 32, 32, 3) and ds.images.dtype == np.float32
        np.testing.assert_array_equal(ds.images, pixels.astype(np.float32) / np.float32(255))
        np.testing.assert_array_equal(ds.classes, classes)
    # The transpose, from the raw record bytes: byte 1 + c·1024 + h·32 + w of record i is pixel (h, w, c).
    raw = (tmp_path / sub / "data_batch_2.bin").read_bytes()
    ds = data.load("cifar10", "train", data_dir=tmp_path)
    first = 2  # data_batch_1 holds 2 records
    for i in range(3):
        rec = raw[i * 3073 : (i + 1) * 3073]
        assert ds.classes[first + i] == rec[0]
        for c, h, w in [(0, 0, 0), (1, 0, 0), (2, 31, 31), (0, 5, 17), (2, 17, 5), (1, 31, 0)]:
            assert ds.images[first + i, h, w, c] == np.float32(rec[1 + c * 1024 + h * 32 + w]) / np.float32(255)


def test_cifar_binary_labels_follow_the_paper(tmp_path):
    # {airplane, bird, deer, frog, ship} → 0, {automobile, cat, dog, horse, truck} → 1.
    zero = {"airplane", "bird", "deer", "frog", "ship"}
    classes = np.arange(10, dtype=np.uint8)
    pixels = np.zeros((10, 32, 32, 3), np.uint8)
    for name in cifar10.FILES["train"]:
        write(tmp_path / name, cifar_bytes(pixels, classes))
    ds = data.load("cifar10", "train", data_dir=tmp_path)
    expected = [0 if cifar10.CLASS_NAMES[c] in zero else 1 for c in classes]
    np.testing.assert_array_equal(ds.labels, np.tile(expected, 5))


# ---------------------------------------------------------------- directories, availability


def test_data_dir_order_argument_then_env_then_cache(tmp_path, monkeypatch):
    arg, env, cache = tmp_path / "arg", tmp_path / "env", tmp_path / "xdg-cache" / "jaxadv"
    for d, n in ((arg, 1), (env, 2), (cache, 3)):
        make_mnist(d, "test", n=n)
    assert len(data.load("mnist", "test").images) == 3
    assert data.resolve_data_dir() == str(cache)
    monkeypatch.setenv("JAXADV_DATA_DIR", str(env))
    assert len(data.load("mnist", "test").images) == 2
    assert len(data.load("mnist", "test", data_dir=arg).images) == 1
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.delenv("JAXADV_DATA_DIR")
    assert data.resolve_data_dir() == os.path.join(os.path.expanduser("~"), ".cache", "jaxadv")


def test_available_checks_files_without_loading(tmp_path):
    assert not data.available("mnist", data_dir=tmp_path)
    make_mnist(tmp_path, "test")
    assert data.available("mnist", split="test", data_dir=tmp_path)
    assert not data.available("mnist", split="train", data_dir=tmp_path)
    assert not data.available("mnist", data_dir=tmp_path)
    make_mnist(tmp_path, "train", gz=True)
    assert data.available("mnist", data_dir=tmp_path)
    assert not data.available("cifar10", data_dir=tmp_path / "missing")
    make_cifar(tmp_path / "cifar-10-batches-bin")
    assert data.available("cifar10", data_dir=tmp_path)
    (tmp_path / "cifar-10-batches-bin" / "data_batch_3.bin").unlink()
    assert not data.available("cifar10", split="train", data_dir=tmp_path)
    assert data.available("cifar10", split="test", data_dir=tmp_path)


# ---------------------------------------------------------------- bad input


def test_missing_files_error_lists_files_directory_and_download(tmp_path):
    make_mnist(tmp_path, "train")
    (tmp_path / "train-labels-idx1-ubyte").unlink()
    with pytest.raises(data.DatasetNotFoundError) as e:
        data.load("mnist", "train", data_dir=tmp_path)
    msg = str(e.value)
    assert "missing: train-labels-idx1-ubyte[.gz]" in msg and "train-images-idx3-ubyte[.gz]" in msg
    assert str(tmp_path) in msg and os.path.join(str(tmp_path), "mnist") in msg and "download=True" in msg
    assert "the `data_dir` argument" in msg
    with pytest.raises(FileNotFoundError, match="CIFAR-10 train split not found") as e:
        data.load("cifar10", "train", data_dir=tmp_path / "nowhere")
    assert "data_batch_5.bin" in str(e.value) and "does not exist" in str(e.value) and "--download" in str(e.value)


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda d: data.load("imagenet", "train", data_dir=d), ValueError, "`name` must be one of"),
        (lambda d: data.load("mnist", "validation", data_dir=d), ValueError, "`split` must be one of"),
        (
            lambda d: data.load("mnist", "train", data_dir=d, download="yes"),
            TypeError,
            "`download` must be True or False",
        ),
        (lambda d: data.load("mnist", "train", data_dir=3), TypeError, "`data_dir` must be a directory path"),
        (lambda d: data.load("mnist", "train", data_dir=d / "file"), NotADirectoryError, "is not a directory"),
        (lambda d: data.available("cifar", data_dir=d), ValueError, "`name` must be one of"),
        (lambda d: data.available("mnist", split="val", data_dir=d), ValueError, "`split` must be one of"),
        (lambda d: data.download("digits", data_dir=d), ValueError, "`name` must be one of"),
        (lambda d: data.download("mnist", data_dir=d, base_urls="http://x/"), TypeError, "`base_urls` must be"),
    ],
)
def test_bad_arguments(tmp_path, call, error, match):
    (tmp_path / "file").write_text("not a directory")
    with pytest.raises(error, match=match):
        call(tmp_path)


def test_env_var_pointing_at_a_file(tmp_path, monkeypatch):
    (tmp_path / "file").write_text("")
    monkeypatch.setenv("JAXADV_DATA_DIR", str(tmp_path / "file"))
    with pytest.raises(NotADirectoryError, match=r"\$JAXADV_DATA_DIR"):
        data.load("mnist", "train")


def _corrupt_mnist(tmp_path, case):
    pixels = RNG.integers(0, 256, (4, 28, 28), dtype=np.uint8)
    images, labels = idx_bytes(pixels), idx_bytes([0, 1, 2, 3])
    name = "train-images-idx3-ubyte"
    if case == "truncated raw":
        images = images[:-100]
    elif case == "trailing bytes":
        images = images + b"\0"
    elif case == "wrong magic":
        images, labels = labels, images  # each file where the other belongs
        name = "train-images-idx3-ubyte"
    elif case == "bad type code":
        images = bytes([0, 0, 0x07, 3]) + images[4:]
    elif case == "wrong size":
        images = idx_bytes(RNG.integers(0, 256, (4, 20, 20), dtype=np.uint8))
    elif case == "label range":
        labels = idx_bytes([0, 1, 12, 3])
        name = "train-labels-idx1-ubyte"
    elif case == "count mismatch":
        labels = idx_bytes([0, 1, 2])
    elif case == "empty":
        images = b""
    gz = case in ("truncated gz", "gzip crc")
    write(tmp_path / ("train-images-idx3-ubyte" + (".gz" if gz else "")), images, gz)
    write(tmp_path / "train-labels-idx1-ubyte", labels)
    path = tmp_path / ("train-images-idx3-ubyte" + (".gz" if gz else ""))
    if case == "truncated gz":
        path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    elif case == "gzip crc":
        blob = bytearray(path.read_bytes())
        blob[-8] ^= 0xFF  # the CRC-32 of the trailer
        path.write_bytes(bytes(blob))
    return name


@pytest.mark.parametrize(
    "case, match",
    [
        ("truncated raw", r"truncated.*\(4, 28, 28\).*3136 bytes"),
        ("trailing bytes", "1 bytes longer than its header says"),
        ("wrong magic", r"magic number 0x00000801.*expected 0x00000803"),
        ("bad type code", "not an IDX file"),
        ("wrong size", "20×20 pixels; MNIST images are 28×28"),
        ("label range", "label 12 at index 2"),
        ("count mismatch", "holds 4 images but .* holds 3 labels"),
        ("empty", "too short"),
        ("truncated gz", "corrupt gzip stream"),
        ("gzip crc", "corrupt gzip stream.*CRC"),
    ],
)
def test_corrupt_mnist_files_name_the_file(tmp_path, case, match):
    name = _corrupt_mnist(tmp_path, case)
    with pytest.raises(data.CorruptDataError, match=match) as e:
        data.load("mnist", "train", data_dir=tmp_path)
    assert name in str(e.value)


@pytest.mark.parametrize(
    "case, match", [("truncated", "not a whole number of 3073-byte records"), ("class", "class byte 10 in record 1")]
)
def test_corrupt_cifar_files_name_the_file(tmp_path, case, match):
    make_cifar(tmp_path)
    path = tmp_path / "data_batch_4.bin"
    blob = bytearray(path.read_bytes())
    if case == "truncated":
        blob = blob[:-1]
    else:
        blob[3073] = 10
    path.write_bytes(bytes(blob))
    with pytest.raises(data.CorruptDataError, match=match) as e:
        data.load("cifar10", "train", data_dir=tmp_path)
    assert "data_batch_4.bin" in str(e.value)


# ---------------------------------------------------------------- downloads from 127.0.0.1


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Serves a directory; under /truncated/ it announces a file's full length and sends half."""

    def do_GET(self):
        if self.path.startswith("/truncated/"):
            body = (self.directory_path / self.path[len("/truncated/") :]).read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        super().do_GET()

    def log_message(self, *args):
        pass


@pytest.fixture
def server(tmp_path):
    """(served directory, base URL) of a threaded HTTP server on 127.0.0.1 with an ephemeral port."""
    root = tmp_path / "served"
    root.mkdir()
    handler = functools.partial(type("H", (_Handler,), {"directory_path": root}), directory=str(root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{httpd.server_address[1]}/"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def _dead_url():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/"  # nothing listens there any more: connection refused


def _serve_mnist(served, monkeypatch, n=5):
    truth = {}
    for split in ("train", "test"):
        truth[split] = make_mnist(served, split, n=n, gz=True)
    for name in mnist.SHA256:
        monkeypatch.setitem(mnist.SHA256, name, sha256((served / name).read_bytes()))
    return truth


def test_mnist_download_verifies_writes_and_loads(tmp_path, server, monkeypatch):
    served, url = server
    truth = _serve_mnist(served, monkeypatch)
    # The first source answers 404, the second is down: the third serves the files.
    monkeypatch.setattr(mnist, "BASE_URLS", [url + "nothing-here/", _dead_url(), url])
    cache = tmp_path / "cache"
    ds = data.load("mnist", "train", data_dir=cache, download=True, progress=False)
    np.testing.assert_array_equal(ds.images[..., 0] * np.float32(255), truth["train"][0])
    np.testing.assert_array_equal(ds.classes, truth["train"][1])
    assert files_under(cache) == ["mnist/train-images-idx3-ubyte.gz", "mnist/train-labels-idx1-ubyte.gz"]
    for name in files_under(cache):
        assert (cache / name).read_bytes() == (served / os.path.basename(name)).read_bytes()
    # download() fetches what is still missing (the test split) and nothing else.
    assert data.download("mnist", data_dir=cache, progress=False) == str(cache)
    assert len(files_under(cache)) == 4
    # Once there, loading needs no network, with or without download=True.
    monkeypatch.setattr(mnist, "BASE_URLS", [_dead_url()])
    np.testing.assert_array_equal(data.load("mnist", "test", data_dir=cache, download=True).classes, truth["test"][1])


def test_wrong_checksum_leaves_nothing(tmp_path, server, monkeypatch):
    served, url = server
    _serve_mnist(served, monkeypatch)
    monkeypatch.setattr(mnist, "BASE_URLS", [url])
    actual = mnist.SHA256["train-images-idx3-ubyte.gz"]
    monkeypatch.setitem(mnist.SHA256, "train-images-idx3-ubyte.gz", "0" * 64)
    cache = tmp_path / "cache"
    with pytest.raises(data.ChecksumError) as e:
        data.load("mnist", "train", data_dir=cache, download=True, progress=False)
    msg = str(e.value)
    assert "train-images-idx3-ubyte.gz" in msg and "0" * 64 in msg and actual in msg
    assert files_under(cache) == []


def test_corrupt_served_file(tmp_path, server, monkeypatch):
    # The served file matches its (test) checksum but is a truncated gzip stream: the download
    # succeeds and loading names the file.
    served, url = server
    _serve_mnist(served, monkeypatch)
    path = served / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:200])
    monkeypatch.setitem(mnist.SHA256, path.name, sha256(path.read_bytes()))
    monkeypatch.setattr(mnist, "BASE_URLS", [url])
    with pytest.raises(data.CorruptDataError, match="train-images-idx3-ubyte.gz: corrupt gzip stream"):
        data.load("mnist", "train", data_dir=tmp_path / "cache", download=True, progress=False)


def test_interrupted_transfer_leaves_nothing(tmp_path, server, monkeypatch):
    served, url = server
    _serve_mnist(served, monkeypatch)
    monkeypatch.setattr(mnist, "BASE_URLS", [url + "truncated/"])
    cache = tmp_path / "cache"
    with pytest.raises(data.DownloadError, match=r"interrupted after \d+ of \d+ bytes"):
        data.load("mnist", "train", data_dir=cache, download=True, progress=False)
    assert files_under(cache) == []


def test_offline_error_says_what_from_where_to_where(tmp_path, monkeypatch):
    dead = _dead_url()
    monkeypatch.setattr(mnist, "BASE_URLS", [dead])
    cache = tmp_path / "cache"
    with pytest.raises(data.DownloadError) as e:
        data.load("mnist", "test", data_dir=cache, download=True, progress=False)
    msg = str(e.value)
    assert "t10k-images-idx3-ubyte.gz" in msg and dead + "t10k-images-idx3-ubyte.gz" in msg
    assert os.path.join(str(cache), "mnist") in msg and "offline" in msg and "unreachable" in msg
    assert "train-labels-idx1-ubyte.gz" in msg  # every file MNIST needs, not only the first that failed
    assert isinstance(e.value, ConnectionError)
    assert files_under(cache) == []
    monkeypatch.setattr(cifar10, "BASE_URLS", [dead])
    with pytest.raises(data.DownloadError, match="cifar-10-binary.tar.gz.*verifies and extracts it without network"):
        data.download("cifar10", data_dir=cache, progress=False)
    assert files_under(cache) == []


def test_cifar_download_extracts_and_loads(tmp_path, server, monkeypatch):
    served, url = server
    truth = make_cifar(tmp_path / "src")
    archive = cifar_archive(tmp_path / "src")
    (served / cifar10.ARCHIVE).write_bytes(archive)
    monkeypatch.setattr(cifar10, "BASE_URLS", [url])
    monkeypatch.setitem(cifar10.SHA256, cifar10.ARCHIVE, sha256(archive))
    cache = tmp_path / "cache"
    ds = data.load("cifar10", "test", data_dir=cache, download=True, progress=False)
    np.testing.assert_array_equal(ds.images, truth["test"][0].astype(np.float32) / np.float32(255))
    # Both splits were extracted, the downloaded archive removed, no temporary file left.
    assert files_under(cache) == sorted(
        f"cifar-10-batches-bin/{n}" for s in ("train", "test") for n in cifar10.FILES[s]
    )
    ds = data.load("cifar10", "train", data_dir=cache)
    np.testing.assert_array_equal(ds.classes, truth["train"][1])


def test_cifar_archive_placed_by_hand_is_extracted_offline_and_kept(tmp_path, monkeypatch):
    truth = make_cifar(tmp_path / "src")
    archive = cifar_archive(tmp_path / "src")
    cache = tmp_path / "cache"
    write(cache / cifar10.ARCHIVE, archive)
    monkeypatch.setattr(cifar10, "BASE_URLS", [_dead_url()])
    monkeypatch.setitem(cifar10.SHA256, cifar10.ARCHIVE, sha256(archive))
    ds = data.load("cifar10", "train", data_dir=cache, download=True)
    np.testing.assert_array_equal(ds.images, truth["train"][0].astype(np.float32) / np.float32(255))
    assert cifar10.ARCHIVE in files_under(cache)
    # A hand-placed archive with another digest is refused (and kept: it is the user's file).
    (cache / "cifar-10-batches-bin" / "test_batch.bin").unlink()
    monkeypatch.setitem(cifar10.SHA256, cifar10.ARCHIVE, "f" * 64)
    with pytest.raises(
        data.ChecksumError, match=r"cifar-10-binary\.tar\.gz: expected sha256 f{64}, got " + sha256(archive)
    ):
        data.load("cifar10", "test", data_dir=cache, download=True)
    assert cifar10.ARCHIVE in files_under(cache)


def _traversal_members():
    evil = tarfile.TarInfo("cifar-10-batches-bin/../../evil.bin")
    absolute = tarfile.TarInfo("/tmp/evil-absolute.bin")
    link = tarfile.TarInfo("cifar-10-batches-bin/link")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    return {"dotdot": [(evil, b"x" * 3073)], "absolute": [(absolute, b"x" * 3073)], "symlink": [(link, b"")]}


@pytest.mark.parametrize("kind", ["dotdot", "absolute", "symlink"])
def test_path_traversal_archive_is_refused(tmp_path, server, monkeypatch, kind):
    served, url = server
    make_cifar(tmp_path / "src")
    archive = cifar_archive(tmp_path / "src", extra=_traversal_members()[kind])
    (served / cifar10.ARCHIVE).write_bytes(archive)
    monkeypatch.setattr(cifar10, "BASE_URLS", [url])
    monkeypatch.setitem(cifar10.SHA256, cifar10.ARCHIVE, sha256(archive))
    cache = tmp_path / "deep" / "cache"
    with pytest.raises(data.CorruptDataError, match="outside the extraction directory.*refused"):
        data.load("cifar10", "train", data_dir=cache, download=True, progress=False)
    assert files_under(cache) == []
    assert not (tmp_path / "deep" / "evil.bin").exists() and not os.path.exists("/tmp/evil-absolute.bin")


@pytest.mark.parametrize("case", ["not gzip", "truncated", "missing member", "link member", "bad size"])
def test_corrupt_archive_leaves_nothing(tmp_path, server, monkeypatch, case):
    served, url = server
    make_cifar(tmp_path / "src")
    extra = ()
    if case == "missing member":
        (tmp_path / "src" / "data_batch_5.bin").unlink()
    if case == "link member":
        (tmp_path / "src" / "data_batch_5.bin").unlink()
        link = tarfile.TarInfo("cifar-10-batches-bin/data_batch_5.bin")
        link.type, link.linkname = tarfile.SYMTYPE, "data_batch_1.bin"
        extra = [(link, b"")]
    if case == "bad size":
        (tmp_path / "src" / "data_batch_5.bin").write_bytes(b"\0" * 3074)
    archive = cifar_archive(tmp_path / "src", extra)
    if case == "not gzip":
        archive = b"this is not an archive" * 100
    elif case == "truncated":
        archive = archive[: len(archive) // 2]
    (served / cifar10.ARCHIVE).write_bytes(archive)
    monkeypatch.setattr(cifar10, "BASE_URLS", [url])
    monkeypatch.setitem(cifar10.SHA256, cifar10.ARCHIVE, sha256(archive))
    cache = tmp_path / "cache"
    match = {
        "not gzip": "not a valid gzipped tar archive",
        "truncated": "not a valid gzipped tar archive",
        "missing member": "no member cifar-10-batches-bin/data_batch_5.bin",
        "link member": "data_batch_5.bin' is not a regular file",
        "bad size": "3074 bytes, not a whole number",
    }[case]
    with pytest.raises(data.CorruptDataError, match=match) as e:
        data.download("cifar10", data_dir=cache, progress=False)
    assert cifar10.ARCHIVE in str(e.value)
    assert files_under(cache) == []


def test_cifar_wrong_checksum_leaves_nothing(tmp_path, server, monkeypatch):
    served, url = server
    make_cifar(tmp_path / "src")
    (served / cifar10.ARCHIVE).write_bytes(cifar_archive(tmp_path / "src"))
    monkeypatch.setattr(cifar10, "BASE_URLS", [url])
    monkeypatch.setitem(cifar10.SHA256, cifar10.ARCHIVE, "1" * 64)
    cache = tmp_path / "cache"
    with pytest.raises(data.ChecksumError, match="cifar-10-binary.tar.gz.*expected sha256 1{64}"):
        data.download("cifar10", data_dir=cache, progress=False)
    assert files_under(cache) == []


# ---------------------------------------------------------------- atomic writes


def test_atomic_open_all_or_nothing(tmp_path):
    path = tmp_path / "f.bin"
    with _atomic.atomic_open(path) as fh:
        fh.write(b"first")
    assert path.read_bytes() == b"first"
    for exc in (ValueError("boom"), KeyboardInterrupt()):
        with pytest.raises(type(exc)):
            with _atomic.atomic_open(path) as fh:
                fh.write(b"half-writ")
                raise exc
        assert path.read_bytes() == b"first"
        assert os.listdir(tmp_path) == ["f.bin"]


# ---------------------------------------------------------------- digits fallback


def test_digits_fallback_matches_scikit_learn():
    sklearn_datasets = pytest.importorskip("sklearn.datasets")
    bunch = sklearn_datasets.load_digits()
    train, test = data.load("digits", "train"), data.load("digits", "test")
    assert train.images.shape == (1437, 8, 8, 1) and test.images.shape == (360, 8, 8, 1)
    images = np.concatenate([train.images, test.images])[..., 0]
    np.testing.assert_array_equal(images, (bunch.images / 16).astype(np.float32))
    np.testing.assert_array_equal(np.concatenate([train.classes, test.classes]), bunch.target)
    np.testing.assert_array_equal(np.concatenate([train.labels, test.labels]), bunch.target % 2)
    assert images.min() == 0 and images.max() == 1
    assert data.available("digits")
    assert data.IMAGE_SHAPES["digits"] == train.images.shape[1:]


def test_digits_without_scikit_learn(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn", None)
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    assert not data.available("digits")
    assert not digits.installed()
    with pytest.raises(ImportError, match=r"pip install 'jaxadv\[digits\]'"):
        data.load("digits", "train")



@pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")
@pytest.mark.parametrize("umask", [0o022, 0o002, 0o077, 0o027])
@pytest.mark.parametrize("via_proc", [True, False])
def test_atomic_open_gives_the_mode_of_a_plain_open(tmp_path, monkeypatch, umask, via_proc):
    # mkstemp makes 0600 files; the destination (new or replaced) must get what open(path, "w")
    # gives a new file in the same directory under the same umask (set here and restored: the
    # umask is process-wide). via_proc=False takes the set-and-restore fallback of systems
    # without /proc/self/status.
    if via_proc and _atomic._umask_from_proc() is None:
        pytest.skip("no umask in /proc/self/status")
    if not via_proc:
        monkeypatch.setattr(_atomic, "_umask_from_proc", lambda: None)
    old = os.umask(umask)
    try:
        plain = tmp_path / "plain.txt"
        with open(plain, "w") as fh:
            fh.write("x")
        expected = os.stat(plain).st_mode & 0o7777
        assert expected == 0o666 & ~umask
        for name, mode in [("new.bin", "wb"), ("new.txt", "w"), ("new.txt", "w")]:  # the last replaces
            with _atomic.atomic_open(tmp_path / name, mode) as fh:
                fh.write(b"x" if "b" in mode else "x")
            assert os.stat(tmp_path / name).st_mode & 0o7777 == expected, oct(os.stat(tmp_path / name).st_mode)
        assert os.umask(umask) == umask  # reading it left it as it was
    finally:
        os.umask(old)
