"""Resource limits: gzip data stops at the size its header announces, a network too big for
memory is refused before allocating, input files must be regular and small enough."""

import gzip
import struct
import time
from pathlib import Path

import pytest

from harness import mnist_head, softmax_tail
from n2d2py import cli, limits
from n2d2py.data import databases
from n2d2py.errors import N2D2PyError

DATA = Path(__file__).parents[1] / "n2d2py" / "datasets" / "mnist"


def test_a_gzip_bomb_stops_at_the_announced_size(tmp_path):
    header = b"\0\0\x08\x03" + struct.pack(">III", 10, 28, 28)  # 7,840 bytes of images
    bomb = tmp_path / "t10k-images-idx3-ubyte.gz"
    bomb.write_bytes(gzip.compress(header + bytes(64 << 20), compresslevel=1))  # 64 MiB
    assert bomb.stat().st_size < 1 << 20
    start = time.monotonic()
    with pytest.raises(N2D2PyError, match=r"gzip data inflates beyond 7,856 bytes"):
        databases.read_idx(bomb, 3)
    assert time.monotonic() - start < 2


def test_a_huge_plain_idx_file_is_refused_without_reading_it(tmp_path):
    huge = tmp_path / "t10k-images-idx3-ubyte"
    with open(huge, "wb") as f:
        f.write(b"\0\0\x08\x03" + struct.pack(">III", 10, 28, 28))
        f.truncate(8 << 30)  # sparse: 8 GiB
    start = time.monotonic()
    with pytest.raises(N2D2PyError, match="trailing bytes: its header announces 7,856 bytes"):
        databases.read_idx(huge, 3)
    assert time.monotonic() - start < 2


def test_gunzip_reads_concatenated_members_and_refuses_truncation(tmp_path):
    data = gzip.compress(b"abc") + gzip.compress(b"def")
    assert limits.gunzip(data, 6, "x") == b"abcdef"
    with pytest.raises(N2D2PyError, match="inflates beyond 5 bytes"):
        limits.gunzip(data, 5, "x")
    with pytest.raises(N2D2PyError, match="truncated"):
        limits.gunzip(gzip.compress(b"abcdef" * 100)[:-12], 600, "x")


def test_a_network_too_big_for_memory_is_refused_with_its_size(tmp_path, capsys):
    ini = tmp_path / "big.ini"
    ini.write_text(f"""[database]
Type=MNIST_IDX_Database
DataPath={DATA}
[sp]
SizeX=28
SizeY=28
[fc1]
Input=sp
Type=Fc
NbOutputs=100000000000
[fc2]
Input=fc1
Type=Fc
NbOutputs=10
[softmax]
Input=fc2
Type=Softmax
NbOutputs=10
WithLoss=1
[softmax.Target]
""")
    with pytest.raises(SystemExit) as info:
        cli.main([str(ini), "-learn", "10", "-o", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert info.value.code == 2, err
    assert f"error: {ini}: the network's 79,500,000,000,010 parameters need about" in err
    assert "the largest layer, [fc1], has 78,500,000,000,000 parameters" in err
    assert not (tmp_path / "run").exists()


def test_read_regular_refuses_fifos(tmp_path):
    import os

    fifo = tmp_path / "fifo.ini"
    os.mkfifo(fifo)
    fd = os.open(fifo, os.O_RDWR)  # a writer, so that opening for reading does not block
    try:
        with pytest.raises(N2D2PyError, match="fifo.ini: INI file is not a regular file"):
            limits.read_regular(fifo, 100, "INI file")
    finally:
        os.close(fd)


SMALL = (
    mnist_head(f"DataPath={DATA}\n",
               "SizeX={size}\nSizeY={size}\nBatchSize={batch}\n{transformation}\n")
    + softmax_tail("sp")
)


@pytest.mark.parametrize("size, batch, transformation, args, message", [
    (60000, 1, "", ["--dry-run"], r":6: \[sp\] SizeX: a stimulus of 3,600,000,000 values"),
    (28, 10**8, "", ["--dry-run"], r":8: \[sp\] BatchSize: a batch of 100,000,000 stimuli"),
    (28, 8, "[sp.Transformation-1]\nType=RescaleTransformation\nWidth=60000\nHeight=60000",
     ["--dry-run"], r":11: \[sp.Transformation-1\] Width: 60000x60000 pixels is over the limit"),
    (28, 8, "", ["-learn", str(10**15), "-o", "run"], r"-learn 1,000,000,000,000,000 needs"),
])
def test_sizes_that_cannot_fit_in_memory_are_one_line(tmp_path, capsys, monkeypatch, size, batch,
                                                     transformation, args, message):
    import re

    monkeypatch.chdir(tmp_path)
    ini = tmp_path / "m.ini"
    ini.write_text(SMALL.format(size=size, batch=batch, transformation=transformation))
    start = time.monotonic()
    with pytest.raises(SystemExit) as info:
        cli.main([str(ini), *args])
    err = [line for line in capsys.readouterr().err.splitlines() if not line.startswith("warning")]
    assert info.value.code == 2 and len(err) == 1 and re.search(message, err[0]), err
    assert time.monotonic() - start < 10
