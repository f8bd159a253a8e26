"""python -m raftcart_jepsen --nemesis NAME|all|mixed --time S --nodes 3|5"""

import argparse
import os
import sys
import time

from . import checker, report
from .cluster import Cluster
from .nemesis import NEMESES, schedule
from .net import Net
from .workload import Workload, final_state, populate


def run_one(args, names, label, log):
    nodes = list(range(1, args.nodes + 1))
    workdir = os.path.join(args.out, label)
    os.makedirs(workdir, exist_ok=True)
    net = Net(nodes)
    net.up()
    cluster = Cluster(args.binary, workdir, nodes)
    try:
        leader = cluster.start_all()
        if leader is None:
            return {"valid": False, "errors": ["no leader at start"]}
        init = populate(leader)
        t0 = time.monotonic()

        def clock():
            return time.monotonic() - t0

        windows = []
        nemesis_error = []

        def faults(duration):
            try:
                schedule(names, cluster, net, args.seed, clock, duration, windows, log)
            except Exception as e:  # a fault that could not be healed
                nemesis_error.append(f"{type(e).__name__}: {e}")
                log(f"{clock():7.2f}s  nemesis failed: {nemesis_error[0]}")
                time.sleep(max(0.0, duration - clock()))

        workload = Workload(nodes, args.clients, args.seed, clock)
        history = workload.run(args.time, during=faults)
        end = clock()

        # Heal everything, bring every node back, let them converge.
        net.heal()
        net.fast()
        for n in nodes:
            cluster.resume(n)
            if n not in cluster.running():
                cluster.start(n)
        leader = cluster.wait_for_leader(30)
        converged = leader is not None and cluster.wait_converged(60)
        final, replicas = None, {}
        if converged:
            members = [m["id"] for m in cluster.status(leader)["members"]]
            final, replicas = final_state(leader, members, init)
        # Without a converged cluster there is no final state to judge.
        checking = time.monotonic()
        result = checker.check(history, init, final, replicas, windows, end)
        result["checker_seconds"] = round(time.monotonic() - checking, 1)
        if not converged:
            result["errors"].append("the cluster did not converge within 60 s after healing")
        result["errors"] += [f"nemesis failed: {e}" for e in nemesis_error]
        result["valid"] = not result["errors"]
        report.write_json(os.path.join(workdir, "history.json"), history)
        # With these, `python -m raftcart_jepsen.recheck DIR` judges the run again.
        report.write_json(os.path.join(workdir, "state.json"),
                          {"init": init, "final": final, "replicas": replicas,
                           "windows": windows, "end": end})
        report.write_json(os.path.join(workdir, "result.json"), result)
        report.plot(os.path.join(workdir, "latency.png"), label, history, windows)
        return result
    finally:
        cluster.stop_all()
        net.down()


def main():
    p = argparse.ArgumentParser(prog="jepsen/run.sh")
    p.add_argument("--nemesis", default="all",
                   help=f"one of {', '.join(NEMESES)}; 'all' runs each alone in turn; "
                        "'mixed' picks at random in one run")
    p.add_argument("--time", type=float, default=20.0, help="seconds of workload per run")
    p.add_argument("--nodes", type=int, choices=(3, 5), default=3)
    p.add_argument("--clients", type=int, default=10)
    p.add_argument("--seed", type=int, default=int(time.time()) % 100000)
    p.add_argument("--out", default="jepsen/results")
    p.add_argument("--binary", required=True)
    args = p.parse_args()
    if os.geteuid() != 0:
        sys.exit("jepsen needs root (network namespaces, iptables, tc): run with sudo")

    if args.nemesis == "all":
        runs = [([n], n) for n in NEMESES]
    elif args.nemesis == "mixed":
        runs = [(list(NEMESES), "mixed")]
    elif args.nemesis in NEMESES:
        runs = [([args.nemesis], args.nemesis)]
    else:
        sys.exit(f"unknown nemesis {args.nemesis!r}: {', '.join(NEMESES)}, all, mixed")
    os.makedirs(args.out, exist_ok=True)
    print(f"jepsen: seed {args.seed}, {args.nodes} nodes, {args.clients} clients, "
          f"{args.time:.0f} s per run, results in {args.out}", flush=True)

    results, failed = {}, []
    for names, label in runs:
        result = run_one(args, names, label, lambda line: print(f"   {line}", flush=True))
        results[label] = result
        print(report.summary(label, result), flush=True)
        if not result["valid"]:
            failed.append(label)
    report.write_json(os.path.join(args.out, "results.json"),
                      {"seed": args.seed, "nodes": args.nodes, "runs": results})
    if failed:
        print(f"jepsen: INVALID ({', '.join(failed)}: see above)")
        sys.exit(1)
    print("jepsen: VALID")


if __name__ == "__main__":
    main()
