"""Regenerate the Python stubs of the segmentd API.

Usage (from the repository root)::

    uv run python scripts/gen_protos.py

Reads ``proto/segmentd/v1/*.proto`` and writes, into
``client/segmentd_client/v1/``, for each file: ``*_pb2.py`` and
``*_pb2_grpc.py`` (protoc's Python and gRPC plugins, from the pinned
``grpcio-tools``) and their typed stubs ``*_pb2.pyi`` and ``*_pb2_grpc.pyi``
(mypy-protobuf's ``protoc-gen-mypy`` and ``protoc-gen-mypy_grpc``, taken from
this interpreter's scripts directory, i.e. the venv's ``bin/``).

Why a temporary tree: protoc names a generated module after the *virtual
path* of its .proto file, and writes proto-to-proto imports as Python imports
of the same path. The .proto sources live at ``segmentd/v1/*.proto`` (the
layout buf requires for package ``segmentd.v1`` and the path their imports
use), but the generated modules must be ``segmentd_client.v1.*_pb2`` with
absolute imports inside the client package
(``from segmentd_client.v1 import rules_pb2``). A mapping like
``-Isegmentd_client/v1=proto/segmentd/v1`` alone cannot do it: the
``import "segmentd/v1/rules.proto"`` lines would not resolve, and adding
``-Iproto`` as well makes protoc see each file under two names (duplicate
definitions). So the script copies the .proto files into a temporary
``segmentd_client/v1/`` tree, rewriting only their ``import "segmentd/v1/..."``
lines to ``import "segmentd_client/v1/..."``, and runs protoc there. The proto
package, and so every full name (``segmentd.v1.Segment``, the gRPC method
paths ``/segmentd.v1.SegmentService/GetSegment``), is unchanged; only the
descriptor *file* names registered at run time read
``segmentd_client/v1/*.proto`` (visible in gRPC server reflection).
Post-editing the generated Python instead would mean rewriting text that
also holds serialized descriptors, which is fragile.

Output is generated into a second temporary directory first; only when protoc
succeeds are the old generated files (``*_pb2.py``, ``*_pb2.pyi``,
``*_pb2_grpc.py``, ``*_pb2_grpc.pyi``) deleted, so stubs of a removed .proto
do not linger, and the new ones copied in. ``__init__.py`` is not touched.
The output depends only on the .proto files and the pinned tool versions, so
running the script twice leaves ``git status`` unchanged. It exits non-zero
when protoc fails.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
PROTO_SOURCE_DIR = REPO_ROOT / "proto" / "segmentd" / "v1"
OUTPUT_DIR = REPO_ROOT / "client" / "segmentd_client" / "v1"

# The virtual path of the .proto files in their sources, and in the tree
# protoc compiles (which names the generated Python modules).
SOURCE_PROTO_PATH = "segmentd/v1"
PYTHON_PROTO_PATH = "segmentd_client/v1"

GENERATED_SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py", "_pb2_grpc.pyi")
PLUGIN_NAMES = ("protoc-gen-mypy", "protoc-gen-mypy_grpc")

_SOURCE_IMPORT = re.compile(
    r'^(\s*import\s+(?:public\s+|weak\s+)?")' + re.escape(SOURCE_PROTO_PATH) + "/",
    re.MULTILINE,
)
_ANY_PROJECT_IMPORT = re.compile(r'^\s*import\s+(?:public\s+|weak\s+)?"(segmentd[^"]*)"', re.MULTILINE)


class GenerationError(Exception):
    """The stubs could not be generated; the message says why."""


def main() -> int:
    """Regenerate the stubs; return the process exit code."""
    try:
        written = generate()
    except GenerationError as exc:
        print(f"gen_protos: error: {exc}", file=sys.stderr)
        return 1
    print(f"gen_protos: wrote {len(written)} files into {OUTPUT_DIR.relative_to(REPO_ROOT)}/")
    return 0


def generate() -> list[Path]:
    """Compile every .proto file and replace the generated files in OUTPUT_DIR."""
    proto_files = sorted(PROTO_SOURCE_DIR.glob("*.proto"))
    if not proto_files:
        raise GenerationError(f"no .proto files in {PROTO_SOURCE_DIR}")
    plugins = {name: _find_plugin(name) for name in PLUGIN_NAMES}
    with tempfile.TemporaryDirectory(prefix="segmentd-protos-") as tmp:
        source_root = Path(tmp) / "src"
        output_root = Path(tmp) / "out"
        output_root.mkdir()
        virtual_paths = [_copy_with_python_imports(path, source_root) for path in proto_files]
        _run_protoc(source_root, output_root, plugins, virtual_paths)
        generated = sorted(
            path
            for path in (output_root / PYTHON_PROTO_PATH).iterdir()
            if path.name.endswith(GENERATED_SUFFIXES)
        )
        _check_complete(proto_files, generated)
        _remove_stale_outputs()
        OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
        return [Path(shutil.copyfile(path, OUTPUT_DIR / path.name)) for path in generated]


def _find_plugin(name: str) -> Path:
    """Locate a protoc plugin in this interpreter's scripts dir, else on PATH."""
    scripts_dir = Path(sysconfig.get_path("scripts"))
    for candidate in (scripts_dir / name, scripts_dir / f"{name}.exe"):
        if candidate.is_file():
            return candidate
    found = shutil.which(name)
    if found is None:
        raise GenerationError(
            f"protoc plugin {name!r} not found in {scripts_dir} or on PATH: "
            "install the dev dependencies (uv sync) and run with `uv run`"
        )
    return Path(found)


def _copy_with_python_imports(proto_file: Path, source_root: Path) -> str:
    """Copy a .proto file into the Python-package tree; return its virtual path."""
    text = proto_file.read_text(encoding="utf-8")
    rewritten = _SOURCE_IMPORT.sub(rf"\g<1>{PYTHON_PROTO_PATH}/", text)
    imported = [m.group(1) for m in _ANY_PROJECT_IMPORT.finditer(rewritten)]
    if any(not path.startswith(f"{PYTHON_PROTO_PATH}/") for path in imported):
        raise GenerationError(
            f"{proto_file.name}: project imports must use the path {SOURCE_PROTO_PATH}/<file>.proto"
        )
    virtual_path = f"{PYTHON_PROTO_PATH}/{proto_file.name}"
    target = source_root / virtual_path
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(rewritten, encoding="utf-8")
    return virtual_path


def _run_protoc(
    source_root: Path,
    output_root: Path,
    plugins: dict[str, Path],
    virtual_paths: list[str],
) -> None:
    """Run grpc_tools' bundled protoc with the Python, gRPC and mypy plugins."""
    args = [
        sys.executable,
        "-m",
        "grpc_tools.protoc",
        f"--proto_path={source_root}",
        # google/protobuf/*.proto (Struct, Timestamp, ...), bundled with grpc_tools.
        f"--proto_path={_grpc_tools_dir() / '_proto'}",
        *(f"--plugin={name}={path}" for name, path in plugins.items()),
        f"--python_out={output_root}",
        f"--grpc_python_out={output_root}",
        f"--mypy_out={output_root}",
        f"--mypy_grpc_out={output_root}",
        *virtual_paths,
    ]
    status = subprocess.run(args, check=False).returncode
    if status != 0:
        raise GenerationError(
            f"protoc exited with status {status}. Paths in its messages under "
            f"{source_root}/{PYTHON_PROTO_PATH}/ stand for "
            f"proto/{SOURCE_PROTO_PATH}/ (same file names and line numbers)"
        )


def _grpc_tools_dir() -> Path:
    """Locate the installed grpc_tools package (untyped, so found, not imported)."""
    spec = importlib.util.find_spec("grpc_tools")
    if spec is None or spec.origin is None:
        raise GenerationError("grpcio-tools is not installed: run `uv sync` and use `uv run`")
    return Path(spec.origin).parent


def _check_complete(proto_files: list[Path], generated: list[Path]) -> None:
    """Fail unless protoc wrote all four files for every .proto file."""
    expected = {f"{p.stem}{suffix}" for p in proto_files for suffix in GENERATED_SUFFIXES}
    missing = sorted(expected - {path.name for path in generated})
    if missing:
        raise GenerationError(f"protoc did not write: {', '.join(missing)}")


def _remove_stale_outputs() -> None:
    """Delete every previously generated file from OUTPUT_DIR."""
    if not OUTPUT_DIR.is_dir():
        return
    for path in OUTPUT_DIR.iterdir():
        if path.is_file() and path.name.endswith(GENERATED_SUFFIXES):
            path.unlink()


if __name__ == "__main__":
    sys.exit(main())
