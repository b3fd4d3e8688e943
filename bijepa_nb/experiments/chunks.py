"""Chunked, resumable execution of sweeps and reproductions, in process or on a Ray cluster.

A sweep or a reproduction is cut into *chunks*: each chunk is one batched ensemble (a
batch of runs of one stability mode, or one table variant over its seeds), described by a
JSON-able dict of everything that determines its result (experiment, configs, seeds, the
package's code version, torch version, device type, threads). ``run_chunks`` computes the
chunks that are not in the cache, either one after another in this process or as Ray
tasks, and stores each finished chunk at once, so a rerun after a crash or Ctrl-C only
computes what is missing. The same chunks on the same hardware give the same numbers in
both paths (``tests/test_cluster.py``).

(command line: ``python -m bijepa_nb.cluster``)

Ray is optional (``pip install -e ".[cluster]"``): nothing else in the package or the book
imports it. Workers must be able to import this same version of ``bijepa_nb``: install it
on every node, or pass ``--ray-ship`` to send the package with the job (Ray's
``runtime_env`` ``py_modules``); a mismatch is an error that says so before any work.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PACKAGE_DIR = Path(__file__).resolve().parents[1]
CACHE_FORMAT = "bijepa-chunk/1"
DEFAULT_CACHE = Path(
    os.environ.get("BIJEPA_CACHE_DIR", Path.home() / ".cache" / "bijepa_nb" / "chunks")
)
#: Test hook: a worker that finds this variable set and its marker file missing creates
#: the file and kills its own process, once (the fault test of a killed worker).
KILL_ONCE_ENV = "BIJEPA_FAULT_KILL_ONCE"
#: Test hook: every chunk waits this many seconds before it is computed, so that a test
#: can interrupt a run between its chunks however slowly the test itself is scheduled.
PAUSE_ENV = "BIJEPA_FAULT_CHUNK_PAUSE"


class ClusterError(RuntimeError):
    """The Ray cluster cannot be reached or cannot run the package; the message says why."""


def code_version() -> str:
    """A hash of the package's source files: cached chunks of other code are never used."""
    h = hashlib.sha256()
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        name = path.relative_to(PACKAGE_DIR).as_posix()
        h.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def canonical(obj: Any) -> Any:
    """``obj`` as JSON gives it back (tuples become lists, floats round-trip exactly)."""
    return json.loads(json.dumps(obj))


@dataclass
class Chunk:
    """One unit of work: ``fields`` (JSON-able) determine its result; ``label`` is for logs."""

    fields: dict[str, Any]
    label: str = ""


class ChunkCache:
    """Finished chunks on disk, one JSON file per chunk, named by the hash of its fields.

    ``root=None`` disables the cache. An entry whose stored fields or format differ from
    the chunk's, or which cannot be read, is recomputed with a note, never used.
    """

    def __init__(self, root: Path | str | None, log: Callable[[str], None] = print):
        self.root = None if root is None else Path(root)
        self.log = log

    @staticmethod
    def key(fields: dict[str, Any]) -> str:
        text = json.dumps(canonical(fields), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:32]

    def path(self, fields: dict[str, Any]) -> Path | None:
        return None if self.root is None else self.root / f"{self.key(fields)}.json"

    def get(self, fields: dict[str, Any]) -> Any | None:
        path = self.path(fields)
        if path is None or not path.exists():
            return None
        try:
            entry = json.loads(path.read_text())
        except (OSError, ValueError) as err:
            self.log(f"cache: {path} is unreadable ({err}); recomputing that chunk")
            return None
        if entry.get("format") != CACHE_FORMAT or entry.get("fields") != canonical(
            fields
        ):
            self.log(
                f"cache: {path} was written for other settings or another format; "
                "recomputing that chunk (the entry is not used)"
            )
            return None
        return entry["result"]

    def put(self, fields: dict[str, Any], result: Any) -> None:
        path = self.path(fields)
        if path is None:
            return
        entry = {"format": CACHE_FORMAT, "fields": canonical(fields), "result": result}
        write_json_atomic(path, entry)


def write_json_atomic(path: Path | str, obj: Any, indent: int | None = None) -> None:
    """Write JSON to a temporary file in the same folder, then rename it over ``path``:
    readers see the old file or the new one, never half of one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    seps = None if indent else (",", ":")
    try:
        tmp.write_text(json.dumps(obj, indent=indent, separators=seps) + "\n")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


class OutputError(Exception):
    """An output path that cannot take the results; the message names it and says what
    to do (choose another ``--out``, ``--force``, create the folder)."""


def check_overwrite(
    path: Path | str, new: dict[str, Any], identity: Sequence[str], force: bool
) -> None:
    """Refuse to replace ``path`` with results of a different experiment: the existing
    file must agree with ``new`` on every key of ``identity`` (or ``force``). An existing
    file that is empty, unreadable or not a results JSON is refused too (FileExistsError)."""
    path = Path(path)
    if force or not path.exists():
        return
    try:
        text = path.read_text()
    except OSError as err:
        raise FileExistsError(
            f"{path} exists and cannot be read ({err.strerror or err}); choose another "
            "--out or pass --force to replace it"
        ) from None
    if not text.strip():
        raise FileExistsError(
            f"{path} exists and is empty; choose another --out or pass --force to "
            "replace it"
        )
    try:
        old = json.loads(text)
    except ValueError:
        old = None
    if not isinstance(old, dict):
        raise FileExistsError(
            f"{path} exists and is not a results JSON; choose another --out or pass "
            "--force to replace it"
        )
    for key in identity:
        if old.get(key) != new.get(key):
            raise FileExistsError(
                f"{path} holds results with a different {key!r} ({old.get(key)!r:.80} "
                f"vs {new.get(key)!r:.80}); choose another --out or pass --force"
            )


def check_output(
    path: Path | str, identity: dict[str, Any], force: bool, option: str = "--out"
) -> None:
    """Before any work, raise OutputError when ``path`` could not take results whose
    identity (schema, experiment, seeds or grid, quick ...) is ``identity``: a folder, a
    missing or unwritable folder, or an existing file that ``check_overwrite`` refuses."""
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"{option} {path} is a folder; give a file name in it")
    folder = path.parent
    if not folder.is_dir():
        what = "is a file, not a folder" if folder.exists() else "does not exist"
        raise OutputError(
            f"the folder of {option} {path} ({folder}) {what}; choose another {option}"
            + ("" if folder.exists() else f" or create it (mkdir -p {folder})")
        )
    try:  # the atomic write needs a temporary file beside the target
        with tempfile.NamedTemporaryFile(dir=folder, prefix=f".{path.name}."):
            pass
    except OSError as err:
        raise OutputError(
            f"cannot write in the folder of {option} {path} ({folder}: "
            f"{err.strerror or err}); choose another {option}"
        ) from None
    try:
        check_overwrite(path, identity, tuple(identity), force)
    except FileExistsError as err:
        raise OutputError(str(err)) from None


def save_aside(obj: Any, name: str, folders: Sequence[Path | str]) -> Path:
    """Write ``obj`` as JSON to a new file ``unsaved-<time>-<name>`` in the first of
    ``folders`` (then the temporary folder) that takes it; returns its path."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    last: OSError | None = None
    for folder in [*folders, tempfile.gettempdir()]:
        try:
            Path(folder).mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(
                dir=folder, prefix=f"unsaved-{stamp}-", suffix=f"-{name}"
            )
            with os.fdopen(fd, "w") as f:
                f.write(json.dumps(obj, separators=(",", ":")) + "\n")
            return Path(tmp)
        except OSError as err:
            last = err
    raise OSError(f"no folder took the results ({last})")


def write_output(
    path: Path | str,
    obj: Any,
    identity: Sequence[str],
    force: bool,
    indent: int | None = None,
    aside: Sequence[Path | str] = (),
) -> None:
    """Write the results to ``path`` (``check_overwrite``, then ``write_json_atomic``).
    When that fails (the folder went away, the disk is full, another run wrote a
    different file there meanwhile), save them with ``save_aside`` in ``aside`` or the
    temporary folder and raise OutputError naming that file: the work is never lost."""
    path = Path(path)
    try:
        check_overwrite(path, obj, identity, force)
        write_json_atomic(path, obj, indent=indent)
        return
    except OSError as err:
        why = str(err)
    try:
        side = save_aside(obj, path.name, aside)
    except OSError as err:
        raise OutputError(
            f"could not write {path} ({why}), nor save the results elsewhere ({err})"
        ) from None
    raise OutputError(
        f"could not write {path} ({why}); the results are saved in {side} "
        f"(mv {side} {path} puts them there)"
    )


def execute(fn: Callable[[dict[str, Any]], Any], fields: dict[str, Any]) -> Any:
    """Run one chunk (in this process or in a Ray worker) and return its JSON-able result."""
    marker = os.environ.get(KILL_ONCE_ENV)
    if marker and not os.path.exists(marker):
        Path(marker).write_text(f"killed pid {os.getpid()}\n")
        os._exit(17)  # a worker dying mid-task, as if the machine lost it
    pause = os.environ.get(PAUSE_ENV)
    if pause:
        time.sleep(float(pause))
    return canonical(fn(fields))


def run_chunks(
    fn: Callable[[dict[str, Any]], Any],
    chunks: Sequence[Chunk],
    cache: ChunkCache | None = None,
    cluster: Cluster | None = None,
    cpus_per_chunk: int = 1,
    gpus_per_chunk: float = 0,
    log: Callable[[str], None] = print,
) -> tuple[list[Any], dict[str, Any]]:
    """Results of ``fn(chunk.fields)`` for every chunk, in order, and what was done.

    Chunks found in ``cache`` are not computed; each computed chunk is stored as soon as it
    finishes. ``cluster`` (from ``connect``): run the missing chunks as Ray tasks of
    ``cpus_per_chunk`` CPUs (and ``gpus_per_chunk`` GPUs) each, retried by Ray if a worker dies; otherwise one after
    another here. ``fn`` must be a module-level function (workers import it).
    """
    cache = cache or ChunkCache(None)
    results: list[Any] = [None] * len(chunks)
    todo = []
    for i, c in enumerate(chunks):
        hit = cache.get(c.fields)
        if hit is not None:
            results[i] = hit
        else:
            todo.append(i)
    cached = len(chunks) - len(todo)
    backend = "ray" if cluster is not None else "in-process"
    log(
        f"{len(chunks)} chunks: {cached} from the cache"
        + (f" ({cache.root})" if cache.root else "")
        + f", {len(todo)} to compute ({backend})"
    )
    t0 = time.perf_counter()

    def done(i: int, result: Any) -> None:
        results[i] = result
        cache.put(chunks[i].fields, result)
        n = sum(r is not None for r in results)
        log(
            f"  chunk {i + 1}/{len(chunks)} {chunks[i].label} done "
            f"({n}/{len(chunks)}, {time.perf_counter() - t0:.1f} s)"
        )

    if cluster is None:
        for i in todo:
            done(i, execute(fn, chunks[i].fields))
    elif todo:
        items = [(i, chunks[i].fields) for i in todo]
        cluster.map(fn, items, cpus_per_chunk, done, gpus=gpus_per_chunk)
    info = {
        "backend": backend,
        "chunks": len(chunks),
        "from_cache": cached,
        "computed": len(todo),
    }
    return results, info


# ----------------------------------------------------------------------------- Ray


def _import_ray():
    try:
        import ray
    except ImportError:
        raise ClusterError(
            '--ray needs Ray, an optional extra: pip install -e ".[cluster]" (or pip '
            "install 'ray>=2.40')"
        ) from None
    return ray


def _reachable(address: str, timeout: float = 5.0) -> None:
    """Raise ClusterError within ``timeout`` seconds when ``host:port`` does not answer."""
    hostport = address.split("://", 1)[-1]
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise ClusterError(
            f"--ray address must be 'auto', HOST:PORT or ray://HOST:PORT, got {address!r}"
        )
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as err:
        raise ClusterError(
            f"no Ray cluster answers at {address} ({err}) within {timeout:g} s; start one "
            "with `ray start --head` on that machine, or leave out the address for a "
            "local cluster"
        ) from None


_PROBE_SOURCE = """
def probe(module):
    import importlib, hashlib, pathlib
    try:
        mod = importlib.import_module(module)
    except Exception as err:
        return {"ok": False, "error": f"{type(err).__name__}: {err}"}
    h = hashlib.sha256()
    root = pathlib.Path(mod.__file__).parent
    for path in sorted(root.rglob("*.py")):
        name = path.relative_to(root).as_posix()
        h.update(name.encode() + b"\\0" + path.read_bytes() + b"\\0")
    return {"ok": True, "version": h.hexdigest()[:16], "file": mod.__file__}
"""


def _probe_function():
    """A function that Ray ships by value (defined outside any importable module), so a
    worker can run it even where ``bijepa_nb`` is missing."""
    namespace: dict[str, Any] = {"__name__": "bijepa_nb_cluster_probe"}
    exec(compile(_PROBE_SOURCE, "<bijepa_nb probe>", "exec"), namespace)
    return namespace["probe"]


class Cluster:
    """A connection to a Ray cluster (started locally or joined); see ``connect``."""

    def __init__(self, ray: Any, address: str, shipped: bool, started: bool):
        self.ray, self.address, self.shipped, self.started = (
            ray,
            address,
            shipped,
            started,
        )

    def check_workers(self, module: str = "bijepa_nb") -> dict[str, Any]:
        """Run a probe task: the workers must import ``module`` at this code version."""
        probe = self.ray.remote(num_cpus=0)(_probe_function())
        try:
            got = self.ray.get(probe.remote(module), timeout=120)
        except Exception as err:
            raise ClusterError(f"a probe task on the cluster failed: {err}") from None
        ship = (
            "ship it with the job (--ray-ship, Ray runtime_env py_modules) or install "
            "the project on every worker (pip install -e . in the same environment)"
        )
        if not got["ok"]:
            raise ClusterError(
                f"the Ray workers cannot import {module} ({got['error']}): {ship}"
            )
        if module == "bijepa_nb" and got["version"] != code_version():
            raise ClusterError(
                f"the Ray workers run another version of bijepa_nb ({got['file']}, code "
                f"{got['version']}, here {code_version()}): {ship}"
            )
        return got

    def map(
        self,
        fn: Callable[[dict[str, Any]], Any],
        items: Sequence[tuple[int, dict[str, Any]]],
        cpus: int,
        done: Callable[[int, Any], None],
        gpus: float = 0,
    ) -> None:
        """Submit every item as a task (retried up to 3 times if its worker dies); call
        ``done(i, result)`` as each finishes. A chunk's own error is not retried."""
        ray = self.ray
        task = ray.remote(
            num_cpus=cpus, num_gpus=gpus, max_retries=3, retry_exceptions=False
        )(execute)
        pending = {task.remote(fn, fields): i for i, fields in items}
        # Ctrl-C must not land inside Ray's C++ core while a task completes (Ray 2.60
        # then aborts with "Check failed: it != submissible_tasks_.end()"): the handler
        # only sets a flag, and the loop below turns it into KeyboardInterrupt between
        # two short waits.
        interrupted = threading.Event()
        main = threading.current_thread() is threading.main_thread()
        previous = (
            signal.signal(signal.SIGINT, lambda *_: interrupted.set()) if main else None
        )
        try:
            while pending:
                if interrupted.is_set():
                    raise KeyboardInterrupt
                ready, _ = ray.wait(list(pending), num_returns=1, timeout=0.2)
                if not ready:
                    continue
                i = pending.pop(ready[0])
                try:
                    result = ray.get(ready[0])
                except ray.exceptions.RayTaskError as err:
                    cause = err.cause if hasattr(err, "cause") else err
                    if isinstance(cause, ModuleNotFoundError):
                        raise ClusterError(
                            f"a worker cannot import the package ({cause}); pass "
                            "--ray-ship or install the project on every worker"
                        ) from None
                    raise
                done(i, result)
        finally:
            if main:
                signal.signal(signal.SIGINT, previous)
            for ref in pending:  # not force=True: a task finishing now is left alone
                with contextlib.suppress(Exception):
                    ray.cancel(ref)

    def shutdown(self) -> None:
        if self.started:
            self.ray.shutdown()


def connect(
    address: str | None = None,
    num_cpus: int | None = None,
    ship: bool = False,
    log: Callable[[str], None] = print,
    check: bool = True,
) -> Cluster:
    """Start a local Ray instance (``address=None``; ``num_cpus`` CPUs, no dashboard) or
    join a running cluster (``"auto"``, ``"HOST:PORT"``, ``"ray://HOST:PORT"``).

    ``ship``: send this package with the job (``runtime_env`` ``py_modules``) for workers
    that do not have it installed. ``check``: probe the workers before any work.
    """
    ray = _import_ray()
    runtime_env: dict[str, Any] = {"env_vars": {"PYTHONWARNINGS": "ignore"}}
    for name in (KILL_ONCE_ENV, PAUSE_ENV):
        if os.environ.get(name):
            runtime_env["env_vars"][name] = os.environ[name]
    if ship:
        runtime_env["py_modules"] = [str(PACKAGE_DIR)]
    started = True
    if address not in (None, "auto"):
        _reachable(address)  # fail within seconds, naming the address
    if ray.is_initialized():
        started = False  # this process already has a cluster: use it
    elif address is None:
        ray.init(
            num_cpus=num_cpus,
            include_dashboard=False,
            runtime_env=runtime_env,
            logging_level="ERROR",
            log_to_driver=False,
        )
    else:
        try:
            ray.init(
                address=address,
                runtime_env=runtime_env,
                logging_level="ERROR",
                log_to_driver=False,
            )
        except (ConnectionError, RuntimeError, ValueError) as err:
            raise ClusterError(
                f"could not join the Ray cluster at {address!r}: {err}. Start one with "
                "`ray start --head`, or leave out the address for a local cluster"
            ) from None
    cluster = Cluster(ray, address or "local", ship, started)
    cpus = ray.cluster_resources().get("CPU", 0)
    gpus = ray.cluster_resources().get("GPU", 0)
    log(
        f"ray {ray.__version__}: {cluster.address} cluster, {cpus:g} CPUs, {gpus:g} GPUs"
    )
    if check:
        try:
            cluster.check_workers()
        except ClusterError:
            cluster.shutdown()
            raise
    return cluster
