"""Glacier's benchmark: the seed's ETL through Glacier against direct polars, the
cost of building large graphs, the per-step cost of running many small steps, and
the cost of ``import glacier``.

Run ``python bench/run.py`` (30M rows, 5 alternating runs per engine; about 5 minutes)
or ``python bench/run.py --quick`` (1M rows, 3 runs; about a minute).
See ``bench/README.md`` for what is measured and the targets.

Every measured ETL run is a fresh child process (``python bench/run.py _one ...``):
the parent times it from spawn to exit and reads the child's peak RSS from
``os.wait4``; the child times its own imports and its pipeline. This module imports
only the standard library at top level, so a child pays for nothing but the engine
it measures.
"""

from __future__ import annotations

import time

_T0 = time.perf_counter()  # first thing a child does: its clock starts here

import argparse
import json
import math
import os
import platform
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DEFAULT_DATA = HERE / "data"
DEFAULT_ROWS = 30_000_000
QUICK_ROWS = 1_000_000
CATEGORIES = 200

TARGET_WALL = 1.05  # glacier / polars, median work time
TARGET_RSS = 1.10  # glacier / polars, median peak RSS
TARGET_GRAPH_S = 1.0  # build + topological sort + waves of 10,000 steps
TARGET_IMPORT_MS = 50.0  # extra import cost of glacier over polars

#: Children run here, with Glacier's run records under DATA/state (set in cmd_bench),
#: so the benchmark writes nothing outside bench/data.
CHILD_CWD: str | None = None

CLOUD_SDKS = ("boto3", "botocore", "aiobotocore", "s3fs", "gcsfs", "adlfs", "azure", "google")


# ----------------------------------------------------------------------------------
# dataset
# ----------------------------------------------------------------------------------


def dataset_path(data_dir: Path) -> Path:
    return data_dir / "raw" / "data.parquet"


def ensure_dataset(path: Path, rows: int, seed: int) -> tuple[bool, float]:
    """Write the dataset unless ``path`` already holds ``rows`` rows. Returns (made, seconds)."""
    import polars as pl

    if path.exists():
        try:
            have = pl.scan_parquet(path).select(pl.len()).collect().item()
        except Exception:  # noqa: BLE001 - unreadable: regenerate
            have = -1
        if have == rows:
            return False, 0.0
    started = time.perf_counter()
    path.parent.mkdir(parents=True, exist_ok=True)
    # Deterministic pseudo-random columns from seeded hashes of the row number.
    idx = pl.int_range(0, rows, dtype=pl.Int64)
    h_cat = pl.col("id").hash(seed=seed)
    h_null = pl.col("id").hash(seed=seed + 1)
    h_val = pl.col("id").hash(seed=seed + 2)
    frame = (
        pl.LazyFrame()
        .select(id=idx)
        .with_columns(
            category=pl.lit("cat-") + (h_cat % CATEGORIES).cast(pl.String).str.zfill(3),
            value=pl.when(h_null % 100 < 5).then(None).otherwise((h_val % 10_000_000).cast(pl.Float64) / 100.0),
            ts=pl.lit(datetime(2025, 1, 1)) + pl.duration(seconds=pl.col("id")),
        )
        .collect()
    )
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    frame.write_parquet(tmp)
    os.replace(tmp, path)
    return True, time.perf_counter() - started


def describe_dataset(path: Path) -> dict[str, Any]:
    import polars as pl

    lf = pl.scan_parquet(path)
    stats = lf.select(
        rows=pl.len(),
        categories=pl.col("category").n_unique(),
        null_pct=pl.col("value").null_count() / pl.len() * 100,
    ).collect()
    return {
        "path": str(path),
        "bytes": path.stat().st_size,
        "schema": {k: str(v) for k, v in lf.collect_schema().items()},
        **stats.row(0, named=True),
    }


# ----------------------------------------------------------------------------------
# one measured ETL run (child side)
# ----------------------------------------------------------------------------------


def child_polars(raw: str, work: str) -> dict[str, Any]:
    t_imp = time.perf_counter()
    import polars as pl

    t_work = time.perf_counter()
    step1, step2, out = (os.path.join(work, n) for n in ("step1.parquet", "step2.parquet", "result.parquet"))
    os.makedirs(work, exist_ok=True)
    pl.scan_parquet(raw).filter(pl.col("value").is_not_null()).sink_parquet(step1)
    pl.scan_parquet(step1).with_columns((pl.col("value") * 2).alias("doubled")).sink_parquet(step2)
    pl.scan_parquet(step2).group_by("category").agg(pl.col("value").sum()).sink_parquet(out)
    t_end = time.perf_counter()
    return {"import_s": t_work - t_imp, "work_s": t_end - t_work, "out": out, "ok": True}


def child_glacier(raw: str, work: str) -> dict[str, Any]:
    t_imp = time.perf_counter()
    import polars as pl

    import glacier  # noqa: F401

    t_work = time.perf_counter()
    from glacier import Pipeline, Provider
    from glacier.config import LocalConfig

    # Everything through the provider's buckets: the root is the data directory
    # (bench/data), so raw/data.parquet is bucket "raw" and the run's files live under
    # bucket "runs" (runs/glacier/...).
    root = os.path.dirname(os.path.dirname(raw))
    provider = Provider(config=LocalConfig(root=root))
    local = provider.local()
    rel = os.path.relpath(work, root).split(os.sep)
    bucket, prefix = rel[0], "/".join(rel[1:])
    source = provider.bucket(bucket=os.path.basename(os.path.dirname(raw)), path=os.path.basename(raw))
    i1 = provider.bucket(bucket=bucket, path=f"{prefix}/step1.parquet")
    i2 = provider.bucket(bucket=bucket, path=f"{prefix}/step2.parquet")
    out = provider.bucket(bucket=bucket, path=f"{prefix}/result.parquet")
    assert source.uri == f"file://{raw}", (source.uri, raw)

    @local.task()
    def extract(df: pl.LazyFrame) -> pl.LazyFrame:
        return df.filter(pl.col("value").is_not_null())

    @local.task()
    def transform(df: pl.LazyFrame) -> pl.LazyFrame:
        return df.with_columns((pl.col("value") * 2).alias("doubled"))

    @local.task()
    def aggregate(df: pl.LazyFrame) -> pl.LazyFrame:
        return df.group_by("category").agg(pl.col("value").sum())

    pipeline = (
        Pipeline(name="bench_etl")
        .source(source)
        .transform(extract)
        .to(i1)
        .transform(transform)
        .to(i2)
        .transform(aggregate)
        .to(out)
    )
    result = pipeline.run(mode="local")
    t_end = time.perf_counter()
    steps = {name: {"status": str(s.status), "seconds": s.seconds, "rows": s.rows} for name, s in result.steps.items()}
    return {
        "import_s": t_work - t_imp,
        "work_s": t_end - t_work,
        "out": out.uri.removeprefix("file://"),
        "ok": bool(result.ok),
        "steps": steps,
    }


def cmd_one(args: argparse.Namespace) -> int:
    run = child_glacier if args.engine == "glacier" else child_polars
    report = run(os.path.abspath(args.raw), os.path.abspath(args.work))
    report["child_inner_total_s"] = time.perf_counter() - _T0
    with open(args.report, "w") as fh:
        json.dump(report, fh)
    return 0 if report["ok"] else 1


# ----------------------------------------------------------------------------------
# one measured ETL run (parent side)
# ----------------------------------------------------------------------------------


def spawn_measured(argv: list[str]) -> tuple[int, float, Any, str, str]:
    """Run ``argv`` in a child; return (exit status, wall seconds, its rusage, stdout, stderr).

    The rusage comes from ``os.wait4`` on that one child: ``ru_maxrss`` is its peak
    RSS in KiB, ``ru_utime + ru_stime`` its CPU time. Linux carries the parent's
    peak RSS into a child across fork/exec, so the parent stays small (no polars).
    """
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=out, stderr=err, cwd=CHILD_CWD)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)  # so Popen does not wait again
        out.seek(0)
        err.seek(0)
        return proc.returncode, wall, usage, out.read().decode(errors="replace"), err.read().decode(errors="replace")


def measure_etl(engine: str, raw: Path, work: Path) -> dict[str, Any]:
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    fd, report_path = tempfile.mkstemp(prefix=f"bench-{engine}-", suffix=".json")
    os.close(fd)
    try:
        argv = [sys.executable, str(Path(__file__).resolve()), "_one", engine, "--raw", str(raw), "--work", str(work), "--report", report_path]
        # Linux hands the parent's peak RSS on to a child (fork/exec): keep the parent small.
        assert "polars" not in sys.modules, "the parent must not import polars"
        os.sync()  # start each run with no dirty pages left by the previous one
        load = os.getloadavg()[0]
        code, wall, usage, _out, err = spawn_measured(argv)
        if code != 0:
            msg = f"{engine} run failed (exit {code}):\n{err[-4000:]}"
            raise RuntimeError(msg)
        with open(report_path) as fh:
            report = json.load(fh)
    finally:
        os.unlink(report_path)
    report.update(engine=engine, wall_s=wall, peak_rss_mib=usage.ru_maxrss / 1024, cpu_s=usage.ru_utime + usage.ru_stime, load1=load)
    return report


def _helper(*args: str) -> Any:
    """Run ``run.py <args>`` in a child and return the JSON it prints (keeps polars out of the parent)."""
    proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), *args], capture_output=True, text=True, cwd=CHILD_CWD)
    if proc.returncode != 0:
        msg = f"run.py {' '.join(args)} failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}"
        raise RuntimeError(msg)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def same_result(a: str, b: str) -> tuple[bool, str]:
    ok, note = _helper("_compare", a, b)
    return bool(ok), str(note)


def compare_outputs(a: str, b: str) -> tuple[bool, str]:
    """Whether two aggregated outputs hold the same rows (float sums to 1e-9 relative)."""
    import polars as pl
    from polars.testing import assert_frame_equal

    left = pl.read_parquet(a).sort("category")
    right = pl.read_parquet(b).sort("category")
    try:
        assert_frame_equal(left, right, check_exact=False, rel_tol=1e-9, abs_tol=1e-6)
    except TypeError:  # older polars spells the tolerances rtol/atol
        try:
            assert_frame_equal(left, right, check_exact=False, rtol=1e-9, atol=1e-6)
        except AssertionError as exc:
            return False, str(exc).splitlines()[0]
    except AssertionError as exc:
        return False, str(exc).splitlines()[0]
    return True, f"{left.height} categories, sum(value) = {left['value'].sum():.6f}"


def bench_etl(raw: Path, data_dir: Path, repeat: int, warmup: int) -> dict[str, Any]:
    runs: list[dict[str, Any]] = []
    mismatches: list[str] = []
    reference: str | None = None
    print(f"\n== ETL: direct polars vs Glacier ({repeat} alternating runs each, fresh process per run) ==")
    header = f"{'run':>4}  {'engine':<8} {'work s':>8} {'child wall s':>13} {'import s':>9} {'CPU s':>7} {'peak RSS MiB':>13} {'load':>5}  glacier steps (s)"
    print(header)
    print("-" * len(header))
    total = warmup + repeat
    for i in range(total):
        for engine in ("polars", "glacier"):
            r = measure_etl(engine, raw, data_dir / "runs" / engine)
            r["run"] = i + 1 - warmup
            r["warmup"] = i < warmup
            ref_copy = data_dir / "runs" / "reference.parquet"
            if reference is None:
                shutil.copyfile(r["out"], ref_copy)
                reference = str(ref_copy)
            ok, note = same_result(reference, r["out"])
            r["output_matches"] = ok
            if not ok:
                mismatches.append(f"{engine} run {r['run']}: {note}")
            steps = " ".join(f"{k}={v['seconds']:.2f}" for k, v in r.get("steps", {}).items())
            label = "warm" if r["warmup"] else str(r["run"])
            print(f"{label:>4}  {engine:<8} {r['work_s']:>8.3f} {r['wall_s']:>13.3f} {r['import_s']:>9.3f} {r['cpu_s']:>7.2f} {r['peak_rss_mib']:>13.1f} {r['load1']:>5.2f}  {steps}", flush=True)
            if not r["warmup"]:
                runs.append(r)

    def values(engine: str, key: str) -> list[float]:
        return [r[key] for r in runs if r["engine"] == engine]

    summary: dict[str, Any] = {}
    for key in ("work_s", "wall_s", "import_s", "cpu_s", "peak_rss_mib"):
        p, g = values("polars", key), values("glacier", key)
        pm, gm = statistics.median(p), statistics.median(g)
        summary[key] = {
            "polars": pm, "glacier": gm, "ratio": gm / pm if pm else float("nan"),
            "polars_min": min(p), "glacier_min": min(g), "ratio_min": min(g) / min(p) if min(p) else float("nan"),
            # spread of one engine's runs: (max - min) / median
            "polars_spread": (max(p) - min(p)) / pm if pm else 0.0, "glacier_spread": (max(g) - min(g)) / gm if gm else 0.0,
        }
    ok_out, note = same_result(reference, runs[-1]["out"]) if reference else (False, "no output")
    checks = {
        "wall": summary["work_s"]["ratio"] <= TARGET_WALL,
        "rss": summary["peak_rss_mib"]["ratio"] <= TARGET_RSS,
        "outputs": not mismatches and ok_out,
    }
    print()
    print(f"{'median (min)':<20} {'polars':>17} {'glacier':>17} {'glacier/polars':>17} {'spread p/g':>12}  target")
    rows = [
        ("work time (s)", "work_s", f"<= {TARGET_WALL:.2f}x", checks["wall"]),
        ("child wall time (s)", "wall_s", "(info)", None),
        ("import time (s)", "import_s", "(info)", None),
        ("child CPU time (s)", "cpu_s", "(info)", None),
        ("peak RSS (MiB)", "peak_rss_mib", f"<= {TARGET_RSS:.2f}x", checks["rss"]),
    ]
    for label, key, target, passed in rows:
        s = summary[key]
        verdict = "" if passed is None else ("PASS" if passed else "FAIL")
        both = lambda a, b: f"{a:.3f} ({b:.3f})"  # noqa: E731
        spread = f"{s['polars_spread'] * 100:.0f}%/{s['glacier_spread'] * 100:.0f}%"
        print(f"{label:<20} {both(s['polars'], s['polars_min']):>17} {both(s['glacier'], s['glacier_min']):>17} "
              f"{both(s['ratio'], s['ratio_min']):>16}x {spread:>12}  {target} {verdict}")
    print(f"{'outputs equal':<20} {'PASS' if checks['outputs'] else 'FAIL'}: {note if not mismatches else '; '.join(mismatches)}")
    loads = [r["load1"] for r in runs]
    print(f"machine load (1-min average) before runs: {min(loads):.2f} to {max(loads):.2f} on {os.cpu_count()} CPUs"
          + ("  <- other work was running; wall-time ratios are noisy, compare CPU time and min" if max(loads) > 0.5 else ""))
    return {"runs": runs, "median": summary, "checks": checks, "output_note": note, "mismatches": mismatches}


# ----------------------------------------------------------------------------------
# graph scale (child side, then parent side)
# ----------------------------------------------------------------------------------


def _graph_pipeline(shape: str, n: int, seed: int) -> Any:
    from glacier import Pipeline, Provider
    from glacier.config import LocalConfig

    provider = Provider(config=LocalConfig(root="memory://"))
    local = provider.local()

    @local.task()
    def step(df: Any) -> Any:
        return df

    @local.task()
    def merge(**frames: Any) -> Any:
        return next(iter(frames.values()))

    raw = provider.bucket(bucket="lake", path="raw.parquet")
    targets = [provider.bucket(bucket="lake", path=f"{shape}/s{i}.parquet") for i in range(n)]
    if shape == "linear":
        p = Pipeline(name="linear").source(raw)
        for b in targets:
            p = p.transform(step).to(b)
        return p
    if shape == "wide":
        parts = [Pipeline(name=f"w{i}").source(raw).transform(step).to(b) for i, b in enumerate(targets)]
        return Pipeline.compose(*parts, name="wide")
    # random DAG: step i reads 1-3 distinct outputs of earlier steps (or raw);
    # the pipelines are composed in shuffled order so the sort has work to do.
    rng = random.Random(seed)
    parts = []
    for i, b in enumerate(targets):
        k = min(rng.randint(1, 3), i + 1)
        picks = rng.sample(range(-1, i), k)
        srcs = {f"in{j}": (raw if s < 0 else targets[s]) for j, s in enumerate(picks)}
        parts.append(Pipeline(name=f"r{i}").sources(srcs).transform(merge).to(b))
    rng.shuffle(parts)
    return Pipeline.compose(*parts, name="random")


def cmd_graph(args: argparse.Namespace) -> int:
    import gc

    out: list[dict[str, Any]] = []
    for shape in args.shapes.split(","):
        for n in (int(x) for x in args.sizes.split(",")):
            samples: list[dict[str, float]] = []
            for i in range(2 * args.repeat):
                # Even samples run as a user's would; odd ones with the cyclic GC paused
                # during the timed part, which isolates Glacier's own algorithm from
                # CPython's collections (whose cost grows with the live object count).
                gc_off = i % 2 == 1
                gc.collect()
                t0 = time.perf_counter()
                p = _graph_pipeline(shape, n, args.seed)
                t1 = time.perf_counter()
                if gc_off:
                    gc.disable()
                dag = p.build()
                t2 = time.perf_counter()
                order = dag.topological_sort()
                t3 = time.perf_counter()
                waves = dag.waves()
                t4 = time.perf_counter()
                gc.enable()
                if gc_off:
                    samples[-1]["total_nogc_s"] = t4 - t1
                    continue
                assert len(order) == n, (shape, n, len(order))
                if shape == "linear":
                    assert len(waves) == n
                if shape == "wide":
                    assert len(waves) == 1
                samples.append(
                    {"construct_s": t1 - t0, "build_s": t2 - t1, "topo_s": t3 - t2, "waves_s": t4 - t3, "total_s": t4 - t1,
                     "waves": len(waves), "total_nogc_s": float("nan")}
                )
                del p, dag, order, waves
            med = {k: statistics.median(s[k] for s in samples) for k in samples[0]}
            med["total_nogc_min_s"] = min(s["total_nogc_s"] for s in samples)
            # A deterministic count of the work: Python and C function calls made by
            # build + sort + waves (immune to the machine's load and caches).
            p = _graph_pipeline(shape, n, args.seed)
            calls = 0

            def count(frame: Any, event: str, arg: Any) -> None:
                nonlocal calls
                if event in ("call", "c_call"):
                    calls += 1

            sys.setprofile(count)
            dag = p.build()
            dag.topological_sort()
            dag.waves()
            sys.setprofile(None)
            med["calls"] = calls
            del p, dag
            out.append({"shape": shape, "steps": n, **med})
    with open(args.report, "w") as fh:
        json.dump(out, fh)
    return 0


def bench_graph(sizes: list[int], repeat: int, seed: int) -> dict[str, Any]:
    print(f"\n== Graph scale: build() + topological_sort() + waves(), median of {repeat} (memory:// buckets, fresh process) ==")
    print("   (GC off s: the fastest of the runs with the cyclic GC paused during the timed part)")
    fd, report = tempfile.mkstemp(prefix="bench-graph-", suffix=".json")
    os.close(fd)
    try:
        argv = [sys.executable, str(Path(__file__).resolve()), "_graph", "--sizes", ",".join(map(str, sizes)),
                "--shapes", "linear,wide,random", "--repeat", str(repeat), "--seed", str(seed), "--report", report]
        code, wall, usage, _o, err = spawn_measured(argv)
        rss = usage.ru_maxrss
        if code != 0:
            msg = f"graph benchmark failed (exit {code}):\n{err[-4000:]}"
            raise RuntimeError(msg)
        with open(report) as fh:
            rows = json.load(fh)
    finally:
        os.unlink(report)
    header = (f"{'shape':<8} {'steps':>7} {'waves':>7} {'construct s':>12} {'build s':>9} {'topo s':>9} {'waves s':>9} "
              f"{'total s':>9} {'GC off s':>9} {'calls':>9}  target")
    print(header)
    print("-" * len(header))
    checks: dict[str, bool] = {}
    for r in rows:
        target = ""
        if r["steps"] == 10_000:
            passed = r["total_s"] < TARGET_GRAPH_S
            checks[f"{r['shape']}_10k_under_1s"] = passed
            target = f"< {TARGET_GRAPH_S:.0f} s {'PASS' if passed else 'FAIL'}"
        print(f"{r['shape']:<8} {r['steps']:>7} {int(r['waves']):>7} {r['construct_s']:>12.4f} {r['build_s']:>9.4f} {r['topo_s']:>9.4f} {r['waves_s']:>9.4f} {r['total_s']:>9.4f} {r['total_nogc_min_s']:>9.4f} {r['calls']:>9}  {target}")
    scaling: list[dict[str, Any]] = []
    if len(sizes) >= 2:
        print("\nscaling per doubling of steps (build+sort+waves): linear ~ x2, quadratic ~ x4; exponent = log2(ratio)."
              "\nPASS when the function calls (an exact count of the work) grow x2.2 at most and the fastest time with"
              "\nthe GC paused stays under x3.5. CPython's collections and cache misses on a larger object graph"
              "\nmake the times themselves grow somewhat faster than the work.")
        for shape in ("linear", "wide", "random"):
            steps = []
            for small, big in zip(sizes, sizes[1:]):
                a = next(r for r in rows if r["shape"] == shape and r["steps"] == small)
                b = next(r for r in rows if r["shape"] == shape and r["steps"] == big)
                factor = big / small
                ratio = b["total_s"] / a["total_s"] if a["total_s"] else float("nan")
                nogc = b["total_nogc_min_s"] / a["total_nogc_min_s"] if a["total_nogc_min_s"] else float("nan")
                calls = b["calls"] / a["calls"] if a["calls"] else float("nan")
                cratio = b["construct_s"] / a["construct_s"] if a["construct_s"] else float("nan")
                exponent = math.log(nogc) / math.log(factor) if nogc > 0 and factor > 1 else float("nan")
                # Linear: the call count grows with the steps (x2 per doubling, exactly), and
                # the time, GC paused, stays clear of quadratic (x4 per doubling).
                ok = calls <= 1.1 * factor and nogc < 1.75 * factor
                steps.append(ok)
                scaling.append({"shape": shape, "from": small, "to": big, "ratio_total": ratio, "ratio_nogc": nogc, "ratio_calls": calls,
                                "ratio_construct": cratio, "exponent_nogc": exponent, "linear": ok})
                print(f"  {shape:<8} {small:>6} -> {big:<6} time x{ratio:.2f} with GC, x{nogc:.2f} GC paused (exponent {exponent:.2f}),"
                      f" calls x{calls:.2f}, construct x{cratio:.2f}   {'PASS' if ok else 'FAIL (superlinear)'}")
            checks[f"{shape}_linear"] = all(steps)
    print(f"(child wall {wall:.2f} s, peak RSS {rss / 1024:.0f} MiB)")
    return {"rows": rows, "scaling": scaling, "checks": checks, "child_wall_s": wall, "child_peak_rss_mib": rss / 1024}


# ----------------------------------------------------------------------------------
# run scale: many small steps, each writing one target (informational)
# ----------------------------------------------------------------------------------


def cmd_runscale(args: argparse.Namespace) -> int:
    import polars as pl

    from glacier import Pipeline, Provider
    from glacier.config import LocalConfig

    out: list[dict[str, Any]] = []
    for layout in ("one-dir", "own-dir"):
        for n in (int(x) for x in args.sizes.split(",")):
            root = os.path.join(args.root, f"{layout}-{n}")
            shutil.rmtree(root, ignore_errors=True)
            os.makedirs(os.path.join(root, "lake"))
            pl.DataFrame({"value": [1.0, None, 3.0]}).write_parquet(os.path.join(root, "lake", "src.parquet"))
            provider = Provider(config=LocalConfig(root=root))
            local = provider.local()
            src = provider.bucket(bucket="lake", path="src.parquet")

            @local.task()
            def keep(df: pl.LazyFrame) -> pl.LazyFrame:
                return df.filter(pl.col("value").is_not_null())

            def target(i: int) -> str:
                return f"out/part-{i:05d}.parquet" if layout == "one-dir" else f"out/{i:05d}/part.parquet"

            parts = [Pipeline(name=f"p{i}").source(src).transform(keep).to(provider.bucket(bucket="lake", path=target(i))) for i in range(n)]
            pipeline = Pipeline.compose(*parts, name=f"fan_{layout}_{n}")
            started = time.perf_counter()
            result = pipeline.run(mode="local")
            seconds = time.perf_counter() - started
            out.append({"layout": layout, "steps": n, "run_s": seconds, "ms_per_step": 1000 * seconds / n, "ok": bool(result.ok)})
            shutil.rmtree(root, ignore_errors=True)
    with open(args.report, "w") as fh:
        json.dump(out, fh)
    return 0


def bench_runscale(sizes: list[int], data_dir: Path) -> dict[str, Any]:
    print("\n== Run scale: N one-row steps fanned out from one source, run for real (info) ==")
    fd, report = tempfile.mkstemp(prefix="bench-runscale-", suffix=".json")
    os.close(fd)
    try:
        argv = [sys.executable, str(Path(__file__).resolve()), "_runscale", "--sizes", ",".join(map(str, sizes)),
                "--root", str(data_dir / "runscale"), "--report", report]
        code, _wall, _usage, _o, err = spawn_measured(argv)
        if code != 0:
            msg = f"run-scale benchmark failed (exit {code}):\n{err[-4000:]}"
            raise RuntimeError(msg)
        with open(report) as fh:
            rows = json.load(fh)
    finally:
        os.unlink(report)
    print(f"{'targets':<34} {'steps':>6} {'run s':>8} {'ms/step':>8}")
    for r in rows:
        where = "all in one directory" if r["layout"] == "one-dir" else "each in its own directory"
        print(f"{where:<34} {r['steps']:>6} {r['run_s']:>8.2f} {r['ms_per_step']:>8.2f}{'' if r['ok'] else '  (run failed)'}")
    growth = {}
    if len(sizes) >= 2:
        for layout in ("one-dir", "own-dir"):
            a = next(r for r in rows if r["layout"] == layout and r["steps"] == sizes[0])
            b = next(r for r in rows if r["layout"] == layout and r["steps"] == sizes[-1])
            growth[layout] = b["ms_per_step"] / a["ms_per_step"]
        print(f"per-step cost x{sizes[-1] / sizes[0]:g} steps: one directory x{growth['one-dir']:.2f}, own directories x{growth['own-dir']:.2f}"
              "  (x1 = a run is linear in its steps; growing = quadratic)")
    return {"rows": rows, "per_step_growth": growth, "checks": {}}


# ----------------------------------------------------------------------------------
# import cost
# ----------------------------------------------------------------------------------

_IMPORTTIME = re.compile(r"^import time:\s+(\d+)\s+\|\s+(\d+)\s+\|(\s*)(\S+)")

_MODULES_PROBE = r"""
import json, sys
prefixes = {prefixes!r}
def loaded():
    tops = sorted({{m.split('.')[0] for m in sys.modules}})
    return {{"cloud": [m for m in tops if m in prefixes], "fsspec": "fsspec" in tops, "polars": "polars" in tops, "pluggy": "pluggy" in tops}}
report = {{}}
import glacier
report["import glacier"] = loaded()
from glacier import Provider
from glacier.config import LocalConfig
provider = Provider(config=LocalConfig(root={root!r}))
local = provider.local()
report["+ Provider(LocalConfig) (plugins loaded)"] = loaded()
import polars as pl
from glacier import Pipeline
src = provider.bucket(bucket="lake", path="src.parquet")
import os
os.makedirs({root!r} + "/lake", exist_ok=True)
pl.DataFrame({{"value": [1.0, None, 3.0], "category": ["a", "b", "a"]}}).write_parquet({root!r} + "/lake/src.parquet")
@local.task()
def keep(df):
    return df.filter(pl.col("value").is_not_null())
ok = Pipeline(name="probe").source(src).transform(keep).to(provider.bucket(bucket="lake", path="out.parquet")).run(mode="local").ok
report["+ a local file:// pipeline run"] = dict(loaded(), ok=ok)
print(json.dumps(report))
"""


def _importtime_ms(module: str) -> float:
    proc = subprocess.run([sys.executable, "-X", "importtime", "-c", f"import {module}"], capture_output=True, text=True, check=True, cwd=CHILD_CWD)
    for line in proc.stderr.splitlines():
        m = _IMPORTTIME.match(line)
        if m and m.group(3) == " " and m.group(4) == module:
            return int(m.group(2)) / 1000.0
    msg = f"no importtime line for {module}"
    raise RuntimeError(msg)


def _wall_ms(code: str) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, cwd=CHILD_CWD)
    return (time.perf_counter() - started) * 1000.0


def bench_imports(n: int) -> dict[str, Any]:
    print(f"\n== Import cost: median of {n} fresh processes each (alternating) ==")
    variants = {
        "python -c pass": "pass",
        "import polars": "import polars",
        "import glacier": "import glacier",
        "import polars, glacier": "import polars, glacier",
        "glacier ready (Provider)": "import polars, glacier; from glacier.config import LocalConfig; glacier.Provider(config=LocalConfig(root='.'))",
    }
    walls: dict[str, list[float]] = {k: [] for k in variants}
    itime: dict[str, list[float]] = {"polars": [], "glacier": []}
    for _ in range(n):
        for label, code in variants.items():
            walls[label].append(_wall_ms(code))
        for mod in itime:
            itime[mod].append(_importtime_ms(mod))
    wall_med = {k: statistics.median(v) for k, v in walls.items()}
    it_med = {k: statistics.median(v) for k, v in itime.items()}
    base = wall_med["python -c pass"]
    print(f"{'process':<26} {'wall ms':>9} {'minus start-up':>15}")
    for label in variants:
        print(f"{label:<26} {wall_med[label]:>9.1f} {wall_med[label] - base:>15.1f}")
    print(f"{'-X importtime cumulative':<26} polars {it_med['polars']:.1f} ms, glacier {it_med['glacier']:.1f} ms")
    extra_alone = wall_med["import glacier"] - wall_med["import polars"]
    extra_added = wall_med["import polars, glacier"] - wall_med["import polars"]
    extra_ready = wall_med["glacier ready (Provider)"] - wall_med["import polars"]
    checks = {
        "glacier_vs_polars": extra_alone <= TARGET_IMPORT_MS,
        "glacier_on_top_of_polars": extra_added <= TARGET_IMPORT_MS,
    }
    print(f"import glacier - import polars           = {extra_alone:+7.1f} ms   target <= +{TARGET_IMPORT_MS:.0f} ms {'PASS' if checks['glacier_vs_polars'] else 'FAIL'}")
    print(f"import polars, glacier - import polars   = {extra_added:+7.1f} ms   target <= +{TARGET_IMPORT_MS:.0f} ms {'PASS' if checks['glacier_on_top_of_polars'] else 'FAIL'}")
    print(f"glacier ready (plugins) - import polars  = {extra_ready:+7.1f} ms   (info)")

    with tempfile.TemporaryDirectory(prefix="bench-probe-") as root:
        probe = _MODULES_PROBE.format(prefixes=list(CLOUD_SDKS), root=root)
        proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=root)
    modules = json.loads(proc.stdout.strip().splitlines()[-1])
    print("\nmodules loaded (checked in sys.modules of a fresh child):")
    no_cloud = True
    for stage, found in modules.items():
        cloud = found["cloud"]
        no_cloud &= not cloud
        extra = f", pipeline ok={found['ok']}" if "ok" in found else ""
        print(f"  {stage:<40} cloud SDKs: {', '.join(cloud) or 'none':<10} fsspec: {'yes' if found['fsspec'] else 'no':<4} polars: {'yes' if found['polars'] else 'no'}{extra}")
    checks["no_cloud_sdk"] = no_cloud
    print(f"no cloud SDK imported: {'PASS' if no_cloud else 'FAIL'}")
    return {"wall_ms": walls, "wall_median_ms": wall_med, "importtime_ms": itime, "importtime_median_ms": it_med,
            "extra_ms": {"glacier_vs_polars": extra_alone, "glacier_on_top_of_polars": extra_added, "ready_vs_polars": extra_ready},
            "modules": modules, "checks": checks}


# ----------------------------------------------------------------------------------
# main
# ----------------------------------------------------------------------------------


def cmd_bench(args: argparse.Namespace) -> int:
    rows = args.rows if args.rows is not None else (QUICK_ROWS if args.quick else DEFAULT_ROWS)
    repeat = args.repeat if args.repeat is not None else (3 if args.quick else 5)
    parts = set(args.only.split(",")) if args.only else {"etl", "graph", "runscale", "imports"}
    data_dir = Path(args.data_dir).resolve()
    global CHILD_CWD
    data_dir.mkdir(parents=True, exist_ok=True)
    CHILD_CWD = str(data_dir)
    os.environ["GLACIER_STATE_DIR"] = str(data_dir / "state")
    results: dict[str, Any] = {
        "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {"python": sys.version.split()[0], "platform": platform.platform(), "cpus": os.cpu_count(), "executable": sys.executable},
        "params": {"rows": rows, "repeat": repeat, "warmup": args.warmup, "seed": args.seed, "quick": args.quick, "parts": sorted(parts)},
    }
    results["machine"]["polars"] = _helper("_version")
    print(f"Glacier benchmark  rows={rows:,} repeat={repeat} python={results['machine']['python']} "
          f"polars={results['machine'].get('polars')} cpus={os.cpu_count()}")

    if "etl" in parts:
        raw = dataset_path(data_dir)
        made, secs, info = _helper("_dataset", str(raw), str(rows), str(args.seed))
        results["dataset"] = dict(info, generated=made, generate_s=secs)
        print(f"\ndataset {raw} ({'generated in %.1f s' % secs if made else 'reused'}): {info['rows']:,} rows, "
              f"{info['bytes'] / 2**20:.0f} MiB, {info['categories']} categories, {info['null_pct']:.2f}% null values, schema {info['schema']}")
        results["etl"] = bench_etl(raw, data_dir, repeat, args.warmup)
    if "graph" in parts:
        graph_sizes = args.graph_sizes or ("10000,20000" if args.quick else "10000,20000,40000")
        results["graph"] = bench_graph([int(x) for x in graph_sizes.split(",")], args.graph_repeat, args.seed)
    if "runscale" in parts:
        results["runscale"] = bench_runscale([int(x) for x in args.runscale_sizes.split(",")], data_dir)
    if "imports" in parts:
        results["imports"] = bench_imports(args.import_runs)

    verdicts = {f"{part}.{k}": v for part in ("etl", "graph", "imports") if part in results for k, v in results[part]["checks"].items()}
    results["verdicts"] = verdicts
    results["all_pass"] = all(verdicts.values())
    print("\n== Verdict ==")
    for k, v in verdicts.items():
        print(f"  {'PASS' if v else 'FAIL'}  {k}")
    print(f"overall: {'PASS' if results['all_pass'] else 'FAIL'}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=2, default=str)
        print(f"numbers saved to {args.json}")
    return 0 if results["all_pass"] else 1


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "_one":
        p = argparse.ArgumentParser(prog="run.py _one")
        p.add_argument("engine", choices=["polars", "glacier"])
        p.add_argument("--raw", required=True)
        p.add_argument("--work", required=True)
        p.add_argument("--report", required=True)
        return cmd_one(p.parse_args(argv[1:]))
    if argv and argv[0] == "_compare":
        print(json.dumps(compare_outputs(argv[1], argv[2])))
        return 0
    if argv and argv[0] == "_version":
        import polars as pl

        print(json.dumps(pl.__version__))
        return 0
    if argv and argv[0] == "_dataset":
        path, rows, seed = Path(argv[1]), int(argv[2]), int(argv[3])
        made, secs = ensure_dataset(path, rows, seed)
        print(json.dumps([made, secs, describe_dataset(path)]))
        return 0
    if argv and argv[0] == "_runscale":
        p = argparse.ArgumentParser(prog="run.py _runscale")
        p.add_argument("--sizes", required=True)
        p.add_argument("--root", required=True)
        p.add_argument("--report", required=True)
        return cmd_runscale(p.parse_args(argv[1:]))
    if argv and argv[0] == "_graph":
        p = argparse.ArgumentParser(prog="run.py _graph")
        p.add_argument("--sizes", required=True)
        p.add_argument("--shapes", required=True)
        p.add_argument("--repeat", type=int, default=3)
        p.add_argument("--seed", type=int, default=42)
        p.add_argument("--report", required=True)
        return cmd_graph(p.parse_args(argv[1:]))

    p = argparse.ArgumentParser(description="Benchmark Glacier against direct polars (see bench/README.md).")
    p.add_argument("--rows", type=int, default=None, help=f"rows in the dataset (default {DEFAULT_ROWS:,}; {QUICK_ROWS:,} with --quick)")
    p.add_argument("--repeat", type=int, default=None, help="measured runs per engine, alternating (default 5; 3 with --quick)")
    p.add_argument("--warmup", type=int, default=0, help="unmeasured alternating runs first (default 0)")
    p.add_argument("--quick", action="store_true", help="smoke run: 1,000,000 rows, repeat 3")
    p.add_argument("--seed", type=int, default=42, help="seed of the generated data and the random DAG")
    p.add_argument("--data-dir", default=str(DEFAULT_DATA), help="where the dataset and run outputs go (default bench/data)")
    p.add_argument("--only", default=None, help="comma list of parts to run: etl,graph,runscale,imports (default all)")
    p.add_argument("--graph-sizes", default=None, help="step counts for the graph scale part, doubling (default 10000,20000,40000; 10000,20000 with --quick)")
    p.add_argument("--graph-repeat", type=int, default=5, help="graph timings per shape and size, each with and without GC (default 5)")
    p.add_argument("--runscale-sizes", default="250,1000", help="step counts for the run-scale part (default 250,1000)")
    p.add_argument("--import-runs", type=int, default=15, help="fresh processes per import variant; median (default 15, at least 10)")
    p.add_argument("--json", default=None, metavar="FILE", help="also save every number to FILE")
    return cmd_bench(p.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
