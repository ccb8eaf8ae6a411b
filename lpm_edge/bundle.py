"""The bundle: manifest schema, reading, verifying and writing. Standard library only.

A bundle is a directory (or the same packed as one .zip) holding `manifest.json`, the ONNX graph
and the tokenizer. It is untrusted input: loading checks the schema, refuses paths that leave the
bundle, and checks every file's sha256 before use.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import tempfile
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Collection, Iterator, Mapping

from .errors import BundleError, ConfigError

# Version 2 added `model.fp32_fallback`. Version 3 makes `task` a section (kind, labels, input
# fields and the task's own fields, such as decision thresholds) in place of the task name and the
# top-level `labels`; every bundle is written as version 3, and versions 1 and 2 (always single-label
# classifiers) still load.
SCHEMA_VERSION = 3
SCHEMA_VERSIONS = (1, 2, 3)
LEGACY_TASK = "text-classification"  # the only task of schema versions 1 and 2
FALLBACK_FILE = "model-fp32.onnx"
FORMAT = "lpm-edge-bundle"
MANIFEST = "manifest.json"
MODEL_FILE = "model.onnx"
TOKENIZER_FILE = "tokenizer.json"

# Bounds for .zip bundles: a MiniLM fp32 bundle is ~90 MB; a BERT-large fp32 one ~1.3 GB.
MAX_ZIP_BYTES = 4 * 1024**3
MAX_ZIP_FILES = 64
# Bundle files compress little (deflate, measured on an all-MiniLM-L6-v2 cpu-int8 bundle: model.onnx
# 1.27x, tokenizer.json 3.42x); a member inflating more than this is refused, unless small enough to be harmless.
MAX_ZIP_RATIO = 20
ZIP_RATIO_FREE_BYTES = 1024**2
MAX_MANIFEST_BYTES = 1024**2
_SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class Manifest:
    """What a bundle declares about itself; see `export/README.md` for every field."""

    labels: tuple[str, ...]
    max_length: int
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    files: Mapping[str, Mapping[str, Any]]
    opset: int = 17
    task: str = "text-classification"
    model_file: str = MODEL_FILE
    tokenizer_file: str = TOKENIZER_FILE
    pad_id: int = 0
    recipe: Mapping[str, Any] = field(default_factory=dict)
    source: Mapping[str, Any] = field(default_factory=dict)
    metrics: Mapping[str, Any] = field(default_factory=dict)
    build: Mapping[str, Any] = field(default_factory=dict)
    # An fp32 graph for batches whose padded length lies in `fallback_tokens` (inclusive), the
    # int8 `model_file` for the rest; None = one graph for every batch.
    fallback_file: str | None = None
    fallback_tokens: tuple[int, int] | None = None
    schema_version: int = SCHEMA_VERSION  # as read; always written as SCHEMA_VERSION
    # What the task records besides kind and labels (e.g. thresholds), and its input fields.
    task_info: Mapping[str, Any] = field(default_factory=dict)
    input_fields: tuple[str, ...] = ("text",)

    def graph_for(self, tokens: int) -> str:
        """The graph file that runs a batch padded to `tokens`."""
        if self.fallback_file and self.fallback_tokens and self.fallback_tokens[0] <= tokens <= self.fallback_tokens[1]:
            return self.fallback_file
        return self.model_file

    def to_dict(self) -> dict[str, Any]:
        model: dict[str, Any] = {"file": self.model_file, "inputs": list(self.inputs), "outputs": list(self.outputs),
                                 "opset": self.opset}
        if self.fallback_file:
            model["fp32_fallback"] = {"file": self.fallback_file, "tokens": list(self.fallback_tokens or ())}
        return {
            "format": FORMAT,
            "schema_version": SCHEMA_VERSION,
            "task": {"kind": self.task, "labels": list(self.labels), "inputs": list(self.input_fields),
                     **dict(self.task_info)},
            "max_length": self.max_length,
            "model": model,
            "tokenizer": {"file": self.tokenizer_file, "pad_id": self.pad_id},
            "files": {k: dict(v) for k, v in self.files.items()},
            "recipe": dict(self.recipe),
            "source": dict(self.source),
            "metrics": dict(self.metrics),
            "build": dict(self.build),
        }

    @classmethod
    def from_dict(cls, data: Any, where: str = MANIFEST) -> "Manifest":
        """Validate a parsed manifest; raise BundleError naming the first bad field."""

        def need(obj: Any, key: str, kind: type | tuple[type, ...], ctx: str) -> Any:
            if not isinstance(obj, dict) or key not in obj:
                raise BundleError(f"{where}: missing field '{ctx}{key}'; re-export the bundle")
            value = obj[key]
            if not isinstance(value, kind) or isinstance(value, bool) and kind is int:
                raise BundleError(
                    f"{where}: field '{ctx}{key}' has type {type(value).__name__}; "
                    f"expected {getattr(kind, '__name__', kind)}"
                )
            return value

        if not isinstance(data, dict):
            raise BundleError(f"{where}: expected a JSON object, got {type(data).__name__}")
        if data.get("format") != FORMAT:
            raise BundleError(f"{where}: not an lpm-edge bundle manifest (format={data.get('format')!r})")
        version = need(data, "schema_version", int, "")
        if version not in SCHEMA_VERSIONS:
            raise BundleError(
                f"{where}: bundle schema version {version} is not supported by this lpm-edge "
                f"(it reads versions {', '.join(map(str, SCHEMA_VERSIONS))}); upgrade lpm-edge or re-export the bundle"
            )
        task, labels, task_info, input_fields, ctx = _task_section(data, version, need, where)
        if not all(isinstance(x, str) for x in labels):
            raise BundleError(f"{where}: '{ctx}labels' must be a list of strings")
        if len(set(labels)) != len(labels):
            raise BundleError(f"{where}: '{ctx}labels' has duplicates ({labels}); each label must be unique")
        max_length = need(data, "max_length", int, "")
        if not 1 <= max_length <= 1_000_000:
            raise BundleError(f"{where}: 'max_length' {max_length} is out of range")
        model = need(data, "model", dict, "")
        inputs = need(model, "inputs", list, "model.")
        outputs = need(model, "outputs", list, "model.")
        if not inputs or not all(isinstance(x, str) for x in inputs + outputs) or not outputs:
            raise BundleError(f"{where}: 'model.inputs' and 'model.outputs' must list names")
        files = need(data, "files", dict, "")
        for name, entry in files.items():
            check_name(name, where)
            digest = need(entry, "sha256", str, f"files.{name}.")
            if not _SHA256.fullmatch(digest):
                raise BundleError(
                    f"{where}: 'files.{name}.sha256' is not a sha256 hex digest (64 lowercase hex characters)"
                )
        model_file = need(model, "file", str, "model.")
        tokenizer = need(data, "tokenizer", dict, "")
        tokenizer_file = need(tokenizer, "file", str, "tokenizer.")
        pad_id = need(tokenizer, "pad_id", int, "tokenizer.") if "pad_id" in tokenizer else 0
        if not 0 <= pad_id < 2**31:
            raise BundleError(f"{where}: 'tokenizer.pad_id' {pad_id} is out of range")
        sections = {}
        for key in ("recipe", "source", "metrics", "build"):
            # Optional, free-form records; but always objects, so readers can look keys up.
            sections[key] = need(data, key, dict, "") if data.get(key) is not None else {}
        fallback_file, fallback_tokens = None, None
        if version >= 2 and model.get("fp32_fallback") is not None:
            fallback = need(model, "fp32_fallback", dict, "model.")
            fallback_file = need(fallback, "file", str, "model.fp32_fallback.")
            tokens = need(fallback, "tokens", list, "model.fp32_fallback.")
            if not is_token_range(tokens):
                raise BundleError(f"{where}: 'model.fp32_fallback.tokens' must be [low, high] token counts, "
                                  f"0 <= low <= high; got {tokens!r}")
            fallback_tokens = (tokens[0], tokens[1])
        for name in (model_file, tokenizer_file, *([fallback_file] if fallback_file else [])):
            if name not in files:
                raise BundleError(f"{where}: '{name}' is used but has no entry under 'files'")
        return cls(
            labels=tuple(labels),
            max_length=max_length,
            inputs=tuple(inputs),
            outputs=tuple(outputs),
            files=files,
            opset=need(model, "opset", int, "model."),
            task=task,
            model_file=model_file,
            tokenizer_file=tokenizer_file,
            pad_id=pad_id,
            fallback_file=fallback_file,
            fallback_tokens=fallback_tokens,
            schema_version=version,
            task_info=task_info,
            input_fields=input_fields,
            **sections,
        )


def _task_section(data: dict[str, Any], version: int, need: Any, where: str) -> tuple[str, list, dict, tuple, str]:
    """(kind, labels, the task's own fields, input fields, where labels sit) from either layout:
    schema 3's `task` section, or versions 1 and 2's task name with top-level `labels`."""
    from .tasks import KINDS

    if version < 3:
        task = need(data, "task", str, "")
        if task != LEGACY_TASK:
            raise BundleError(f"{where}: task {task!r} is not supported in schema version {version} "
                              f"(it has only {LEGACY_TASK!r}); re-export the bundle")
        labels = need(data, "labels", list, "")
        if not labels:
            raise BundleError(f"{where}: 'labels' must be a non-empty list of strings")
        return task, labels, {}, ("text",), ""
    section = dict(need(data, "task", dict, ""))
    task = need(section, "kind", str, "task.")
    if task not in KINDS:
        raise BundleError(f"{where}: task {task!r} is not supported; this lpm-edge runs {', '.join(KINDS)} "
                          "(upgrade lpm-edge)")
    labels = need(section, "labels", list, "task.")
    fields = need(section, "inputs", list, "task.")
    if not fields or not all(isinstance(x, str) for x in fields) or len(fields) > 8:
        raise BundleError(f"{where}: 'task.inputs' must list the input fields (1 to 8 names)")
    info = {k: v for k, v in section.items() if k not in ("kind", "labels", "inputs")}
    if all(isinstance(x, str) for x in labels) and len(set(labels)) == len(labels):
        _check_task(task, labels, info, where)
    return task, labels, info, tuple(fields), "task."


def _check_task(kind: str, labels: list, info: dict, where: str) -> None:
    """The task's own checks of its section (labels it needs, thresholds, ...): the one place this
    module imports beyond the standard library (the task's module, numpy)."""
    from .tasks import task_class

    try:
        task_class(kind).from_section(tuple(labels), info, f"{where}: task")
    except ConfigError as exc:
        raise BundleError(f"{exc}; re-export the bundle") from None


def is_token_range(value: Any) -> bool:
    """Whether `value` is a [low, high] pair of token counts, 0 <= low <= high: the shape of a
    manifest's `model.fp32_fallback.tokens` and of a recipe's `quantize.fp32_tokens`."""
    return (isinstance(value, (list, tuple)) and len(value) == 2
            and all(isinstance(v, int) and not isinstance(v, bool) for v in value) and 0 <= value[0] <= value[1])


def graphs(manifest: Manifest) -> list[str]:
    """The bundle's ONNX graph files: the model, then its fp32 fallback when it has one."""
    return [manifest.model_file, *([manifest.fallback_file] if manifest.fallback_file else [])]


def check_name(name: Any, where: str = MANIFEST) -> str:
    """Refuse a listed file name that is not a plain relative POSIX path inside the bundle."""
    plain = (
        isinstance(name, str)
        and "\x00" not in name
        and "\\" not in name
        and not name.startswith("/")
        and str(PurePosixPath(name)) == name  # no "", ".", "./x", "a//b", "dir/"
        and name != "."
        and ".." not in PurePosixPath(name).parts
    )
    if not plain:
        raise BundleError(
            f"{where}: file name {name!r} is not a plain relative path inside the bundle; "
            "refusing it (re-export the bundle)"
        )
    return name


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_entry(path: Path) -> dict[str, Any]:
    return {"sha256": sha256_file(path), "bytes": path.stat().st_size}


def safe_member(root: Path, name: str) -> Path:
    """Resolve `name` inside `root`; refuse absolute paths, `..` and symlinks leading out."""
    if not name or "\x00" in name or os.path.isabs(name) or "\\" in name or ".." in Path(name).parts:
        raise BundleError(f"manifest names the file {name!r}, which is outside the bundle; refusing it")
    path = root / name
    resolved = path.resolve()
    if not resolved.is_relative_to(root.resolve()):
        raise BundleError(f"bundle file {name!r} points outside the bundle ({resolved}); refusing it")
    return path


def read_manifest(directory: Path) -> Manifest:
    path = directory / MANIFEST
    if not path.is_file():
        raise BundleError(
            f"{directory} is not an lpm-edge bundle: no {MANIFEST}; "
            "make one with `lpm-edge export CHECKPOINT --out BUNDLE`"
        )
    safe_member(directory, MANIFEST)  # a symlink leading out of the bundle is refused
    if path.stat().st_size > MAX_MANIFEST_BYTES:
        raise BundleError(f"{path}: {path.stat().st_size} bytes is too large for a manifest")
    return parse_manifest(path.read_bytes(), str(path))


class _DuplicateKey(Exception):
    pass


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # Parsers disagree on which of two equal keys wins (Python's json the last, others the first):
    # what one tool inspects must be what loads.
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise _DuplicateKey(key)
        seen[key] = value
    return seen


def parse_manifest(data: bytes, where: str = MANIFEST) -> Manifest:
    """Parse and validate manifest bytes; raise BundleError naming `where` and the first problem."""
    try:
        parsed = json.loads(data.decode("utf-8"), object_pairs_hook=_no_duplicate_keys)
    except _DuplicateKey as exc:
        raise BundleError(
            f"{where}: the key {str(exc.args[0])[:100]!r} appears twice in one object; refusing an ambiguous "
            "manifest (re-export the bundle)"
        ) from None
    except (ValueError, RecursionError) as exc:
        # ValueError covers bad UTF-8, bad JSON and integers too long to convert;
        # RecursionError comes from deeply nested arrays or objects.
        raise BundleError(
            f"{where}: not valid JSON ({str(exc)[:200]}); the bundle is corrupted, re-export it"
        ) from None
    return Manifest.from_dict(parsed, where=where)


def _listed_file(directory: Path, name: str) -> Path:
    """The path of a file the manifest lists; it must be a regular file inside the bundle."""
    path = safe_member(directory, name)
    if not path.is_file():
        raise BundleError(f"bundle {directory} lacks {name}, listed in its manifest")
    return path


def _check_digest(path: Path, actual: str, expected: str) -> None:
    if actual != expected:
        raise BundleError(
            f"{path}: sha256 {actual[:12]}… does not match the manifest's {expected[:12]}…; "
            "the file is corrupted or was modified, re-export the bundle"
        )


def read_verified(directory: Path, manifest: Manifest, name: str) -> bytes:
    """Read one listed file into memory and check its sha256; the bytes checked are the bytes used."""
    path = _listed_file(directory, name)
    data = path.read_bytes()
    _check_digest(path, hashlib.sha256(data).hexdigest(), manifest.files[name]["sha256"])
    return data


def copy_verified(directory: Path, manifest: Manifest, name: str, target: Path) -> Path:
    """Copy one listed file into `target` (a private directory), hashing while copying.

    The copy is what gets used, so the bytes checked are the bytes used, without holding the
    whole file in memory (a model's bytes in Python would cost their size again at load).
    """
    src = _listed_file(directory, name)
    dst = target / Path(name).name
    digest = hashlib.sha256()
    with open(src, "rb") as f, open(dst, "wb") as out:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
            out.write(block)
    _check_digest(src, digest.hexdigest(), manifest.files[name]["sha256"])
    return dst


def verify(directory: Path, manifest: Manifest, skip: Collection[str] = ()) -> None:
    """Check every listed file (but those in `skip`) exists inside the bundle and matches its sha256.

    Callers that check some files themselves as they read them pass those as `skip`.
    """
    for name, entry in manifest.files.items():
        if name not in skip:
            path = _listed_file(directory, name)
            _check_digest(path, sha256_file(path), entry["sha256"])


@contextlib.contextmanager
def opened(bundle: str | os.PathLike[str], check_files: bool = True) -> Iterator[tuple[Path, Manifest]]:
    """Yield (directory, validated manifest) for a bundle directory or .zip file.

    With check_files, every listed file is checked against its sha256 first. A caller that checks
    files as it reads them (`read_verified`, `copy_verified`) passes False and calls `verify`
    with `skip` for the rest, so that no file is hashed twice.
    """
    path = Path(bundle)
    if not path.exists():
        raise BundleError(f"bundle {path} does not exist")
    if path.is_dir():
        manifest = read_manifest(path)
        if check_files:
            verify(path, manifest)
        yield path, manifest
        return
    if not path.is_file() or not zipfile.is_zipfile(path):  # is_zipfile would block on a FIFO
        raise BundleError(f"{path} is neither a bundle directory nor a .zip bundle")
    with tempfile.TemporaryDirectory(prefix="lpm-edge-bundle-") as tmp:
        extract_zip(path, Path(tmp))
        manifest = read_manifest(Path(tmp))
        if check_files:
            verify(Path(tmp), manifest)
        yield Path(tmp), manifest


def extract_zip(archive: Path, target: Path) -> None:
    """Extract a .zip bundle's manifest and the files it lists, nothing else, into `target`.

    The archive is bounded in file count, every member name must stay inside the bundle, and each
    extracted member in size (its real bytes counted against its header) and compression ratio.
    The bundle's files may sit at the top of the archive or inside one folder (`zip -r b.zip b/`).
    """
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as exc:
        raise BundleError(f"{archive}: damaged zip file ({exc}); re-pack the bundle") from None
    with zf:
        members = [m for m in zf.infolist() if not m.is_dir()]
        if len(members) > MAX_ZIP_FILES:
            raise BundleError(f"{archive}: {len(members)} files; a bundle has at most {MAX_ZIP_FILES}")
        names = [m.filename for m in members]
        if len(set(names)) != len(names):
            # Tools disagree on which duplicate wins; what one inspects must be what loads.
            raise BundleError(f"{archive}: a member name appears twice; re-pack the bundle")
        for name in names:  # a name that leaves the bundle marks a hostile archive, listed or not
            if not name or "\x00" in name or name.startswith("/") or "\\" in name or ".." in PurePosixPath(name).parts:
                raise BundleError(f"{archive}: member {name[:200]!r} is outside the bundle; refusing the archive")
        by_name = {m.filename: m for m in members}
        prefix = _zip_prefix(archive, by_name)
        manifest_member = by_name[prefix + MANIFEST]
        if manifest_member.file_size > MAX_MANIFEST_BYTES:
            raise BundleError(f"{archive}: {manifest_member.file_size} bytes is too large for a manifest")
        _extract_checked(archive, zf, manifest_member, target / MANIFEST)
        manifest = parse_manifest((target / MANIFEST).read_bytes(), f"{archive}: {manifest_member.filename}")
        listed = []
        for name in manifest.files:
            member = by_name.get(prefix + name)
            if member is None:
                raise BundleError(f"{archive}: lacks {prefix + name}, listed in its manifest; re-pack the bundle")
            listed.append((name, member))
        total = manifest_member.file_size + sum(m.file_size for _, m in listed)
        if total > MAX_ZIP_BYTES:
            raise BundleError(f"{archive}: unpacks to {total} bytes, above the {MAX_ZIP_BYTES} limit")
        size = archive.stat().st_size
        for name, member in listed:
            if member.compress_size > size:
                raise BundleError(f"{archive}: {member.filename}'s header claims {member.compress_size} compressed "
                                  f"bytes in a {size}-byte file; re-pack the bundle")
            if member.file_size > ZIP_RATIO_FREE_BYTES and member.file_size > MAX_ZIP_RATIO * member.compress_size:
                raise BundleError(
                    f"{archive}: {member.filename} inflates {member.compress_size} bytes to {member.file_size} "
                    f"(ratio {member.file_size / max(member.compress_size, 1):.0f}, above {MAX_ZIP_RATIO}); "
                    "bundle files do not compress that well, refusing a likely zip bomb"
                )
            _extract_checked(archive, zf, member, safe_member(target, name))


def _zip_prefix(archive: Path, by_name: Mapping[str, zipfile.ZipInfo]) -> str:
    """'' when the manifest is at the archive's top, 'FOLDER/' when it sits in one top-level folder."""
    if MANIFEST in by_name:
        return ""
    nested = sorted(n for n in by_name if n.endswith("/" + MANIFEST) and n.count("/") == 1)
    if len(nested) == 1:
        return nested[0][: -len(MANIFEST)]
    if nested:
        raise BundleError(f"{archive}: holds several bundles ({', '.join(nested[:4])}); pack one bundle per .zip")
    raise BundleError(
        f"{archive} is not an lpm-edge bundle: no {MANIFEST} at its top or in one top-level folder; "
        "make one with `lpm-edge export CHECKPOINT --out BUNDLE`"
    )


def _extract_checked(archive: Path, zf: zipfile.ZipFile, member: zipfile.ZipInfo, dest: Path) -> None:
    try:
        _extract_member(zf, member, dest)
    except (zipfile.BadZipFile, EOFError, zlib.error, RuntimeError, NotImplementedError, OSError) as exc:
        # RuntimeError: encrypted member; NotImplementedError: unknown compression method;
        # OSError: a member clashing with a directory, or no room for it.
        raise BundleError(
            f"{archive}: cannot extract {member.filename} ({exc}); re-pack the bundle"
        ) from None


def _extract_member(zf: zipfile.ZipFile, member: zipfile.ZipInfo, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    written = 0
    with zf.open(member) as src, open(dest, "wb") as out:
        # Count real bytes: a forged header must not let a bomb through.
        for block in iter(lambda: src.read(1 << 20), b""):
            written += len(block)
            if written > member.file_size:
                raise BundleError(f"{member.filename} is larger than its header says; re-pack the bundle")
            out.write(block)


def pack_zip(directory: Path, archive: Path) -> Path:
    """Pack a bundle directory into one .zip file (written atomically)."""
    manifest = read_manifest(directory)
    verify(directory, manifest)
    archive.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{archive.name}.", suffix=".tmp", dir=archive.parent)
    os.close(fd)
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for name in [MANIFEST, *manifest.files]:
                zf.write(directory / name, name)
        os.replace(tmp, archive)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return archive


def scratch_prefix(destination: Path) -> str:
    """Name prefix of the temporary entries written beside `destination`: `.NAME.PID.`.

    The creator's pid lets a later run tell what a killed run left behind from the work of a
    run still going (two runs may write beside the same destination at once).
    """
    return f".{Path(destination).name}.{os.getpid()}."


def _alive(pid: int) -> bool:
    if os.name != "posix":
        return True  # no cheap, safe liveness check elsewhere: never clean up
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, under another user
    return True


def remove_stale(destination: Path) -> None:
    """Clean up beside `destination` after runs that were killed (SIGKILL, power loss, OOM).

    Their temporary directories are removed; a previous version that a run killed between its
    two renames had moved aside is put back, when nothing has taken its place.
    """
    destination = Path(destination)
    if not destination.parent.is_dir():
        return
    pattern = re.compile(re.escape(f".{destination.name}.") + r"(\d+)\.(?:[a-z0-9_]+\.(?:partial|work)|old)")
    for entry in destination.parent.iterdir():
        match = pattern.fullmatch(entry.name)
        if not match or _alive(int(match.group(1))):
            continue
        if entry.name.endswith(".old") and not destination.exists():
            os.replace(entry, destination)
        else:
            shutil.rmtree(entry, ignore_errors=True)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_tree(root: Path) -> None:
    """Flush every file and directory under `root` to disk, so a rename never publishes a
    directory whose files a power loss could leave empty."""
    for path in sorted(root.rglob("*"), reverse=True) + [root]:
        _fsync(path)


def check_writable(destination: Path) -> None:
    """Fail early, before any long work, when nothing can be written beside `destination`."""
    parent = Path(destination).parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=parent):
            pass
    except OSError as exc:
        raise ConfigError(
            f"cannot write to {parent} ({exc.strerror or exc}); choose another output path (--out) "
            "or make that directory writable"
        ) from None


@contextlib.contextmanager
def atomic_directory(destination: Path, force: bool = False) -> Iterator[Path]:
    """Yield a temporary directory beside `destination`; move it into place on success.

    A run that fails or is killed midway leaves any previous `destination` untouched and no
    half-written directory under that name; the next run removes what a killed one left.
    """
    destination = Path(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    remove_stale(destination)
    if destination.exists() and not force:
        raise FileExistsError(destination)
    prefix = scratch_prefix(destination)
    tmp = Path(tempfile.mkdtemp(prefix=prefix, suffix=".partial", dir=destination.parent))
    try:
        yield tmp
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes 0700; a bundle is meant to be shared
        _fsync_tree(tmp)
        if destination.exists():
            # Two renames: a kill between them leaves the previous version at `old`, which
            # remove_stale() puts back on the next run.
            old = destination.with_name(f"{prefix}old")
            os.replace(destination, old)
            os.replace(tmp, destination)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, destination)
        _fsync(destination.parent)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def write_text_atomic(path: Path, text: str) -> None:
    """Write a text file through a temporary file beside it and a rename: never half-written."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write_manifest(directory: Path, manifest: Manifest) -> None:
    (directory / MANIFEST).write_text(json.dumps(manifest.to_dict(), indent=2) + "\n", encoding="utf-8")
