"""A Jepsen-style fault-injection harness for raftcart: a cluster of nodes
in network namespaces, nemeses that fault them, a concurrent workload that
records a history, and a checker that judges it."""
