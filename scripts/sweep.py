"""Run one setting for trainers x datasets x seeds (x shots), N jobs at once.

    python scripts/sweep.py base2new --trainers ZeroshotCLIP CoOp SEP --datasets eurosat dtd \
        --seeds 1 2 3 [--gpus 0 1 2 3 | --jobs 2] [-- CONFIG OVERRIDES...]
    python scripts/sweep.py xd --trainers CoOp SEP --datasets caltech101 imagenetv2 --seeds 1
    python scripts/sweep.py fewshot --trainers CoOp SEP --datasets eurosat --shots 1 2 4 8 16 --seeds 1

A job is the chain of runs that depend on each other (base2new: train on base, then test on new;
xd: train on the source, then test on every target of --datasets). Jobs run in parallel: with --gpus,
one job per listed GPU (CUDA_VISIBLE_DEVICES is set for it); otherwise --jobs at once (default 1).
Finished runs are skipped and unfinished ones resume, so a killed sweep started again redoes nothing
that had finished. With more than one job at a time, each job's output goes to
$OUTPUT/sweep_logs/<job>.log. The sweep exits non-zero when any job failed, after running the rest.
"""

from __future__ import annotations

import argparse
import os
import queue
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import launch  # noqa: E402


def build_jobs(args) -> list[tuple[str, list[launch.Run]]]:
    """(name, runs in order) for each job of the sweep."""
    jobs = []
    for trainer in args.trainers:
        for seed in args.seeds:
            if args.setting == "base2new":
                for dataset in args.datasets:
                    settings = (
                        ["base2new"]
                        if trainer in launch.EVAL_ONLY
                        else ["base2new_train", "base2new_test"]
                    )
                    runs = [
                        run
                        for setting in settings
                        for run in launch.plan(trainer, setting, [dataset, str(seed)] + args.opts)
                    ]
                    jobs.append((f"base2new-{trainer}-{dataset}-seed{seed}", runs))
            elif args.setting == "xd":
                runs = []
                if trainer not in launch.EVAL_ONLY:
                    runs += launch.plan(trainer, "xd_train", [str(seed)] + args.opts)
                for dataset in args.datasets:
                    runs += launch.plan(trainer, "xd_test", [dataset, str(seed)] + args.opts)
                jobs.append((f"xd-{trainer}-seed{seed}", runs))
            else:
                for dataset in args.datasets:
                    for shots in args.shots:
                        plan_args = [dataset, str(shots), str(seed)] + args.opts
                        runs = launch.plan(trainer, "few_shot", plan_args)
                        jobs.append((f"fewshot-{trainer}-{dataset}-{shots}shot-seed{seed}", runs))
    return jobs


def run_job(
    name: str, runs: list[launch.Run], devices: queue.Queue, log_dir: Path | None, threads: int
) -> str:
    device = devices.get()
    env = dict(os.environ)
    if device is not None:
        env["CUDA_VISIBLE_DEVICES"] = device
    # parallel CPU jobs share the cores: more torch threads than cores makes every job crawl
    env.setdefault("OMP_NUM_THREADS", str(threads))
    try:
        if all(launch.is_finished(run.output_dir) for run in runs):
            return "skipped (finished)"
        stream = None
        if log_dir is not None:
            log_dir.mkdir(parents=True, exist_ok=True)
            stream = open(log_dir / f"{name}.log", "a")  # noqa: SIM115
        try:
            for run in runs:
                launch.execute(run, launch.data_root(), env=env, stdout=stream)
        finally:
            if stream is not None:
                stream.close()
        return "done" + (f" on GPU {device}" if device is not None else "")
    finally:
        devices.put(device)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("setting", choices=["base2new", "xd", "fewshot"])
    parser.add_argument("--trainers", nargs="+", required=True)
    parser.add_argument("--datasets", nargs="+", required=True)
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    parser.add_argument("--shots", nargs="+", type=int, default=[1, 2, 4, 8, 16])
    parser.add_argument("--gpus", nargs="+", help="GPU ids; one job per GPU at a time")
    parser.add_argument("--jobs", type=int, default=1, help="parallel jobs without --gpus")
    parser.epilog = "Config overrides for every run go after --: ... -- OPTIM.MAX_EPOCH 5"
    argv = list(sys.argv[1:] if argv is None else argv)
    split = argv.index("--") if "--" in argv else len(argv)
    args = parser.parse_args(argv[:split])
    args.opts = argv[split + 1 :]

    try:
        jobs = build_jobs(args)
    except launch.LaunchError as e:
        print(f"Error: {e}", file=sys.stderr)
        return 2
    slots = args.gpus if args.gpus else [None] * max(1, args.jobs)
    devices: queue.Queue = queue.Queue()
    for slot in slots:
        devices.put(slot)
    log_dir = launch.out_root() / "sweep_logs" if len(slots) > 1 else None
    threads = max(1, (os.cpu_count() or 1) // len(slots))
    print(
        f"Sweep: {len(jobs)} jobs, {len(slots)} at a time"
        + (f", logs in {log_dir}" if log_dir else "")
    )

    failed, start, lock = [], time.time(), threading.Lock()
    with ThreadPoolExecutor(max_workers=len(slots)) as pool:
        futures = {
            pool.submit(run_job, name, runs, devices, log_dir, threads): name for name, runs in jobs
        }
        for done, future in enumerate(as_completed(futures), 1):
            name = futures[future]
            try:
                status = future.result()
            except (launch.LaunchError, subprocess.CalledProcessError) as e:
                status = f"FAILED ({e})"
                failed.append(name)
            with lock:
                elapsed = time.strftime("%H:%M:%S", time.gmtime(time.time() - start))
                print(f"[{done}/{len(jobs)}] {elapsed} {name}: {status}", flush=True)
    if failed:
        print(f"{len(failed)} job(s) failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    print("Sweep finished.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
