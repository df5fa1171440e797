"""ONNX graphs in and out, N2D2's way.

``importer``: a ``[section] Type=ONNX`` section → ordinary cells named after each node's first
output (``ops``: one converter per op type). ``export``: a built Network → ``model.onnx``
(``-export ONNX``). Both need the ``onnx`` package (the ``onnx`` extra).
"""

from n2d2py.errors import N2D2PyError


def require_onnx(where=""):
    """The ``onnx`` module, or a one-line error saying what to install."""
    try:
        import onnx
    except ImportError:
        raise N2D2PyError(
            f"{where}ONNX support needs the onnx package: pip install \"n2d2py[onnx]\""
        ) from None
    return onnx
