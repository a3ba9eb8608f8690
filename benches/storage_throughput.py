#!/usr/bin/env python3
"""Completed trials per second, and ask latency, of K worker processes sharing one study on one
PostgreSQL server: `lepton worker` against Optuna 5 with its RDB storage, on the same server,
in the same run. Both use a random sampler and Branin (a trivial objective), so the figure is
the storage's and the study's overhead.

Each worker prints one JSON line per finished trial (`ask_ms`, `finished_at`). Throughput is
measured over the window in which every worker of a run was working: from the latest first
trial to the earliest last trial (Optuna's workers also wait at a barrier after importing, so
Python's start-up is not counted against it).

    python benches/storage_throughput.py --lepton target/release/lepton \
        --url postgres://postgres@127.0.0.1:5432/test --workers 1,4,16,64 --seconds 10

Also, with --load N: the time and peak memory of loading a study of N finished trials, each
side's from its own storage on the same server (`lepton study best`, Optuna's `load_study`
then `best_trial`), as whole processes under /usr/bin/time.

Needs: optuna==5.0.0, psycopg2-binary (pip).
"""

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
import uuid


def optuna_url(url):
    return url.replace("postgres://", "postgresql+psycopg2://", 1)


def branin(x0, x1):
    b, c, t = 5.1 / (4 * math.pi**2), 5 / math.pi, 1 / (8 * math.pi)
    return (x1 - b * x0**2 + c * x0 - 6) ** 2 + 10 * (1 - t) * math.cos(x0) + 10


def optuna_worker(args):
    """One Optuna worker: waits for the barrier, then asks and tells until the deadline."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # Each Optuna process holds two connections; where that exceeds the server's limit, a
    # NullPool opens one per operation instead (slower, but the only way those workers run).
    engine_kwargs = {"poolclass": __import__("sqlalchemy").pool.NullPool} if args.nullpool else {}
    storage = optuna.storages.RDBStorage(optuna_url(args.url), engine_kwargs=engine_kwargs)
    study = optuna.load_study(
        study_name=args.study,
        storage=storage,
        sampler=optuna.samplers.RandomSampler(seed=os.getpid()),
    )
    time.sleep(max(0.0, args.start_at - time.time()))
    end = args.start_at + args.seconds
    pid = os.getpid()
    out = sys.stdout
    while time.time() < end:
        t0 = time.perf_counter()
        trial = study.ask()
        ask_ms = (time.perf_counter() - t0) * 1e3
        value = branin(trial.suggest_float("x0", -5, 10), trial.suggest_float("x1", 0, 15))
        study.tell(trial, value)
        out.write(json.dumps({"worker": pid, "number": trial.number, "state": "complete",
                              "value": value, "ask_ms": ask_ms, "finished_at": time.time()}))
        out.write("\n")
        out.flush()


def read_lines(paths):
    per_worker = []
    for p in paths:
        rows = []
        with open(p) as f:
            for line in f:
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError:
                    pass
        if rows:
            per_worker.append(rows)
    return per_worker


def summarize(per_worker, k):
    if len(per_worker) < k:
        return {"error": f"only {len(per_worker)} of {k} workers finished a trial"}
    start = max(rows[0]["finished_at"] for rows in per_worker)
    end = min(rows[-1]["finished_at"] for rows in per_worker)
    inside = [r for rows in per_worker for r in rows if start < r["finished_at"] <= end]
    asks = sorted(r["ask_ms"] for r in inside)
    if end - start <= 0 or not asks:
        return {"error": "the workers never all ran at once"}

    def q(p):
        return asks[min(len(asks) - 1, round((len(asks) - 1) * p))]

    return {"trials_per_s": len(inside) / (end - start), "window_s": end - start,
            "trials": sum(len(rows) for rows in per_worker),
            "ask_ms_median": q(0.5), "ask_ms_p99": q(0.99)}


def wait_all(procs, paths, who):
    for proc, path in zip(procs, paths):
        if proc.wait() != 0:
            with open(path + ".err") as f:
                tail = f.read()[-2000:]
            raise SystemExit(f"a {who} worker failed ({proc.returncode}):\n{tail}")


def run_lepton(args, k, tmp):
    study = f"throughput-lepton-{k}-{uuid.uuid4().hex[:8]}"
    paths = [os.path.join(tmp, f"{study}-{i}.jsonl") for i in range(k)]
    procs = []
    for p in paths:
        with open(p, "w") as out, open(p + ".err", "w") as err:
            procs.append(subprocess.Popen(
                [args.lepton, "worker", "--storage", args.url, "--study", study,
                 "--objective", "branin", "--sampler", "random", "--trials", "1000000000",
                 "--timeout-s", str(args.seconds)], stdout=out, stderr=err))
    wait_all(procs, paths, "lepton")
    return study, summarize(read_lines(paths), k)


def run_optuna(args, k, tmp):
    import optuna

    study = f"throughput-optuna-{k}-{uuid.uuid4().hex[:8]}"
    optuna.create_study(study_name=study, storage=optuna_url(args.url))
    paths = [os.path.join(tmp, f"{study}-{i}.jsonl") for i in range(k)]
    # Time for every worker to import Optuna and connect before the barrier (2 cores).
    start_at = time.time() + 5 + 0.4 * k
    nullpool = 2 * k + 5 > max_connections(args)
    procs = []
    for p in paths:
        with open(p, "w") as out, open(p + ".err", "w") as err:
            procs.append(subprocess.Popen(
                [sys.executable, __file__, "optuna-worker", "--url", args.url, "--study", study,
                 "--start-at", str(start_at), "--seconds", str(args.seconds)]
                + (["--nullpool"] if nullpool else []),
                stdout=out, stderr=err))
    wait_all(procs, paths, "optuna")
    result = summarize(read_lines(paths), k)
    result["nullpool"] = nullpool
    return study, result


def max_connections(args):
    import psycopg2

    with psycopg2.connect(args.url) as conn, conn.cursor() as cur:
        cur.execute("SHOW max_connections")
        return int(cur.fetchone()[0])


def delete_studies(args, lepton_studies, optuna_studies):
    import optuna
    import psycopg2

    for name in optuna_studies:
        optuna.delete_study(study_name=name, storage=optuna_url(args.url))
    with psycopg2.connect(args.url) as conn, conn.cursor() as cur:
        for name in lepton_studies:
            cur.execute("DELETE FROM lepton_studies WHERE name = %s", (name,))


def timed(cmd):
    """Wall seconds and peak RSS (MiB) of a whole process, from /usr/bin/time -v."""
    r = subprocess.run(["/usr/bin/time", "-v", *cmd], capture_output=True, text=True, check=True)
    fields = dict(line.strip().rsplit(": ", 1) for line in r.stderr.splitlines() if ": " in line)
    wall = fields["Elapsed (wall clock) time (h:mm:ss or m:ss)"].split(":")
    seconds = sum(float(x) * 60**i for i, x in enumerate(reversed(wall)))
    return seconds, int(fields["Maximum resident set size (kbytes)"]) / 1024


def fill_optuna_study(url, study_id, n):
    """Writes `n` complete Branin trials into Optuna's tables for study `study_id`."""
    import psycopg2

    dist = ('{"name": "FloatDistribution", "attributes": {"step": null, "low": %s, '
            '"high": %s, "log": false}}')
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute("SELECT setseed(0)")
        cur.execute("INSERT INTO trials (number, study_id, state, datetime_start, datetime_complete) "
                    "SELECT g, %s, 'COMPLETE', now(), now() FROM generate_series(0, %s) g",
                    (study_id, n - 1))
        for name, low, high in [("x0", -5.0, 10.0), ("x1", 0.0, 15.0)]:
            cur.execute("INSERT INTO trial_params (trial_id, param_name, param_value, "
                        "distribution_json) SELECT trial_id, %s, %s + (%s - %s) * random(), %s "
                        "FROM trials WHERE study_id = %s",
                        (name, low, high, low, dist % (low, high), study_id))
        cur.execute("""
            INSERT INTO trial_values (trial_id, objective, value, value_type)
            SELECT a.trial_id, 0,
                   power(b.param_value - 5.1 / (4 * pi() ^ 2) * a.param_value ^ 2
                         + 5 / pi() * a.param_value - 6, 2)
                   + 10 * (1 - 1 / (8 * pi())) * cos(a.param_value) + 10, 'FINITE'
            FROM trial_params a JOIN trial_params b ON a.trial_id = b.trial_id
            JOIN trials t ON t.trial_id = a.trial_id
            WHERE t.study_id = %s AND a.param_name = 'x0' AND b.param_name = 'x1'""", (study_id,))


def load_benchmark(args):
    import optuna

    n = args.load
    lepton_study, optuna_study = f"load-lepton-{n}", f"load-optuna-{n}"
    names = subprocess.run([args.lepton, "study", "list", "--storage", args.url],
                           capture_output=True, text=True, check=True).stdout
    if f"{lepton_study}\t" not in names:
        print(f"filling {lepton_study} with {n} trials (4 lepton workers)", file=sys.stderr)
        procs = [subprocess.Popen([args.lepton, "worker", "--storage", args.url, "--study",
                                   lepton_study, "--objective", "branin", "--sampler", "random",
                                   "--trials", str(n), "--quiet"]) for _ in range(4)]
        assert all(p.wait() == 0 for p in procs)
    url = optuna_url(args.url)
    if optuna_study not in optuna.study.get_all_study_names(url):
        # Optuna's add_trials writes about 80 trials/s here; the same rows (trials,
        # trial_params, trial_values) are written in bulk by SQL instead.
        print(f"filling {optuna_study} with {n} trials (SQL)", file=sys.stderr)
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        study = optuna.create_study(study_name=optuna_study, storage=url)
        fill_optuna_study(args.url, study._study_id, n)
    lep = timed([args.lepton, "study", "best", "--storage", args.url, "--study", lepton_study])
    code = ("import optuna,sys; s=optuna.load_study(study_name=sys.argv[1], storage=sys.argv[2]);"
            "t=s.trials; assert len(t) == int(sys.argv[3]), len(t); print(s.best_value)")
    opt = timed([sys.executable, "-c", code, optuna_study, url, str(n)])
    base = timed([sys.executable, "-c", "import optuna"])
    return {"trials": n, "lepton_s": lep[0], "lepton_mib": lep[1], "optuna_s": opt[0],
            "optuna_mib": opt[1], "python_import_optuna_s": base[0],
            "python_import_optuna_mib": base[1]}


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "optuna-worker":
        p = argparse.ArgumentParser()
        p.add_argument("cmd")
        p.add_argument("--url", required=True)
        p.add_argument("--study", required=True)
        p.add_argument("--start-at", type=float, required=True)
        p.add_argument("--seconds", type=float, required=True)
        p.add_argument("--nullpool", action="store_true")
        return optuna_worker(p.parse_args())
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--lepton", required=True, help="path to the `lepton` binary")
    p.add_argument("--url", default="postgres://postgres@127.0.0.1:5432/test")
    p.add_argument("--workers", default="1,4,16,64")
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--load", type=int, default=0, help="also time loading a study of N trials")
    p.add_argument("--skip-throughput", action="store_true")
    args = p.parse_args()
    import optuna
    print(f"# optuna {optuna.__version__}; {os.cpu_count()} cores; {args.seconds:g} s per run")
    if not args.skip_throughput:
        print("| workers | Lepton trials/s | Optuna trials/s | ratio | Lepton ask p50 / p99 ms "
              "| Optuna ask p50 / p99 ms |")
        print("|---|---|---|---|---|---|")
        lepton_studies, optuna_studies = [], []
        with tempfile.TemporaryDirectory() as tmp:
            for k in [int(x) for x in args.workers.split(",")]:
                ls, lr = run_lepton(args, k, tmp)
                os_, orr = run_optuna(args, k, tmp)
                lepton_studies.append(ls)
                optuna_studies.append(os_)
                if "error" in lr or "error" in orr:
                    print(f"| {k} | {lr} | {orr} | | | |")
                    continue
                mark = " (NullPool)" if orr["nullpool"] else ""
                print(f"| {k} | {lr['trials_per_s']:.0f} | {orr['trials_per_s']:.1f}{mark} | "
                      f"{lr['trials_per_s'] / orr['trials_per_s']:.1f}x | "
                      f"{lr['ask_ms_median']:.2f} / {lr['ask_ms_p99']:.2f} | "
                      f"{orr['ask_ms_median']:.1f} / {orr['ask_ms_p99']:.1f} |", flush=True)
                print(json.dumps({"workers": k, "lepton": lr, "optuna": orr}), file=sys.stderr)
        delete_studies(args, lepton_studies, optuna_studies)
    if args.load:
        r = load_benchmark(args)
        print(f"\nloading a study of {r['trials']} finished trials (whole process, wall / peak RSS):")
        print(f"  lepton study best:           {r['lepton_s']:.2f} s / {r['lepton_mib']:.0f} MiB")
        print(f"  optuna load_study + trials:  {r['optuna_s']:.2f} s / {r['optuna_mib']:.0f} MiB")
        print(f"  (python -c 'import optuna':  {r['python_import_optuna_s']:.2f} s / "
              f"{r['python_import_optuna_mib']:.0f} MiB)")
        print(json.dumps(r), file=sys.stderr)


if __name__ == "__main__":
    main()
