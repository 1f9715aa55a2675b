"""Scaling out on PostgreSQL: tracking-page throughput of one `offertrack serve` process, of
`serve --workers 2`, of one node behind HAProxy (the balancer's own cost) and of two nodes
behind HAProxy (deploy/haproxy.cfg), all on one PostgreSQL and Redis. Loaded with wrk
(32 connections) on issued offers' pages, each view recording its scan event. Prints each
setup's median over the rounds and its ratio to the one process measured in the same run.

    .venv/bin/python bench/scale.py [--seconds 5] [--rounds 3]

PostgreSQL: OFFERTRACK_BENCH_POSTGRES_URL (its public schema is emptied); Redis:
OFFERTRACK_BENCH_REDIS_URL (default redis://127.0.0.1:6379/0). On a machine with fewer cores
than processes the ratios say how much of the machine each setup gets, not what more hardware
gives: read them with `nproc` and the load average, which the script prints.
"""

import argparse
import os
import shutil
import statistics
import sys
from collections.abc import Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._servers import PG_URL, ROOT, free_port, postgres_available, scratch_env, server  # noqa: E402
from bench.tracking import _run_python, run_wrk  # noqa: E402

REDIS_URL = os.environ.get("OFFERTRACK_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
OFFERS = 20
WRK_SCRIPT = """
local ids = {%s}
local sent = 0
function request()
  sent = sent + 1
  return wrk.format("GET", "/" .. ids[(sent %% #ids) + 1])
end
"""


def create_offers(env: dict[str, str], count: int) -> list[str]:
    return _run_python(
        env,
        "from sqlmodel import Session\n"
        "from app.db import get_engine\nfrom app.config import get_settings\n"
        "from tests.factories import make_offer\n"
        "with Session(get_engine(), expire_on_commit=False) as s:\n"
        f"    for _ in range({count}):\n"
        "        print(make_offer(s, get_settings(), issued=True).id)\n",
    ).split()


def node(env: dict[str, str], workers: int, var_dir: Path) -> AbstractContextManager[str]:
    port = free_port()
    var_dir.mkdir(parents=True, exist_ok=True)
    args = [sys.executable, "-m", "app.cli", "serve", "--port", str(port), "--no-access-log"]
    args += ["--workers", str(workers)]
    return server(args, {**env, "OFFERTRACK_VAR_DIR": str(var_dir)}, port)


def balanced(env: dict[str, str], nodes: list[str]) -> AbstractContextManager[str]:
    """HAProxy with deploy/haproxy.cfg in front of ``nodes`` (one node: both entries are it)."""
    port = free_port()
    addresses = [url.removeprefix("http://") for url in nodes]
    lb_env = {
        **env,
        "OFFERTRACK_LB_BIND": f"127.0.0.1:{port}",
        "OFFERTRACK_NODE_A": addresses[0],
        "OFFERTRACK_NODE_B": addresses[-1],
    }
    haproxy = shutil.which("haproxy") or "/usr/sbin/haproxy"
    return server([haproxy, "-db", "-f", str(ROOT / "deploy" / "haproxy.cfg")], lb_env, port)


@contextmanager
def setup(name: str, env: dict[str, str], tmp: Path) -> Iterator[str]:
    with ExitStack() as stack:
        if name == "1 process":
            yield stack.enter_context(node(env, 1, tmp / "one"))
        elif name == "2 workers":
            yield stack.enter_context(node(env, 2, tmp / "two"))
        elif name == "1 node + HAProxy":
            yield stack.enter_context(
                balanced(env, [stack.enter_context(node(env, 1, tmp / "lb1"))])
            )
        else:
            nodes = [stack.enter_context(node(env, 1, tmp / f"node{i}")) for i in (1, 2)]
            yield stack.enter_context(balanced(env, nodes))


SETUPS = ("1 process", "2 workers", "1 node + HAProxy", "2 nodes + HAProxy")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    for tool in ("wrk", "haproxy"):
        if not shutil.which(tool) and not shutil.which(tool, path="/usr/sbin"):
            sys.exit(f"{tool} is needed: apt-get install -y {tool}")
    if not postgres_available():
        sys.exit(f"PostgreSQL is not reachable at {PG_URL} (OFFERTRACK_BENCH_POSTGRES_URL)")
    env = scratch_env(PG_URL)
    tmp = Path(env["OFFERTRACK_VAR_DIR"]).parent
    env.update(
        OFFERTRACK_REDIS_URL=REDIS_URL,
        OFFERTRACK_TRUSTED_PROXIES='["127.0.0.1"]',
        OFFERTRACK_PDF_WORKERS="1",
        OFFERTRACK_LOG_LEVEL="WARNING",
    )
    ids = create_offers(env, OFFERS)
    script = tmp / "offers.lua"
    script.write_text(WRK_SCRIPT % ", ".join(f'"{i}"' for i in ids))
    print(f"cores: {os.cpu_count()}, load average before: {os.getloadavg()[0]:.1f}")
    results: dict[str, list[float]] = {}
    for name in SETUPS:
        with setup(name, env, tmp) as base:
            run_wrk(base + "/", 2, ["-s", str(script)])  # warm-up: caches, connections
            loads = [
                run_wrk(base + "/", args.seconds, ["-s", str(script)]) for _ in range(args.rounds)
            ]
        errors = sum(load.errors for load in loads)
        results[name] = [load.rps for load in loads]
        p99 = statistics.median(load.p99_ms for load in loads)
        print(
            f"{name:<20} {statistics.median(results[name]):8.0f} req/s  p99 {p99:6.1f} ms"
            f"  errors {errors}  (rounds: {', '.join(f'{r:.0f}' for r in results[name])})"
        )
    base_rps = statistics.median(results["1 process"])
    print(f"load average after: {os.getloadavg()[0]:.1f}")
    for name in SETUPS[1:]:
        print(f"ratio {name} / 1 process: {statistics.median(results[name]) / base_rps:.2f}")


if __name__ == "__main__":
    main()
