"""The test network: one network namespace per node, joined by a private
bridge, so that partitions are real packet drops (iptables inside each
node's namespace) and slow links real queueing and loss (tc tbf, iptables
random drops: this kernel has no netem)."""

import subprocess

BRIDGE = "rcj0"
SUBNET = "10.88.0"
HOST_IP = f"{SUBNET}.254"
# Docker sets the FORWARD policy to DROP and bridged packets may pass
# through it (br_netfilter): let our bridge's own traffic through.
FORWARD_RULE = ["FORWARD", "-i", BRIDGE, "-o", BRIDGE, "-j", "ACCEPT"]


def sh(*args, check=True):
    r = subprocess.run(args, capture_output=True, text=True)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(args)}: {r.stderr.strip()}")
    return r


def ns(node):
    return f"rcj-n{node}"


def ip_of(node):
    return f"{SUBNET}.{node}"


def in_ns(node, *args):
    return ["ip", "netns", "exec", ns(node), *args]


class Net:
    def __init__(self, nodes):
        self.nodes = list(nodes)

    def up(self):
        self.down()
        sh("ip", "link", "add", BRIDGE, "type", "bridge")
        sh("ip", "addr", "add", f"{HOST_IP}/24", "dev", BRIDGE)
        sh("ip", "link", "set", BRIDGE, "up")
        sh("iptables", "-I", *FORWARD_RULE)
        for n in self.nodes:
            sh("ip", "netns", "add", ns(n))
            veth = f"rcjv{n}"
            sh("ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns(n))
            sh("ip", "link", "set", veth, "master", BRIDGE)
            sh("ip", "link", "set", veth, "up")
            sh(*in_ns(n, "ip", "addr", "add", f"{ip_of(n)}/24", "dev", "eth0"))
            sh(*in_ns(n, "ip", "link", "set", "eth0", "up"))
            sh(*in_ns(n, "ip", "link", "set", "lo", "up"))

    def down(self):
        """Removes everything `up` made, including leftovers of a run that
        was interrupted."""
        for n in range(1, 10):
            # A namespace outlives its name while processes run in it (nodes
            # of a harness that was killed): stop them, or its veth stays.
            pids = sh("ip", "netns", "pids", ns(n), check=False).stdout.split()
            for pid in pids:
                sh("kill", "-9", pid, check=False)
            sh("ip", "netns", "del", ns(n), check=False)
            sh("ip", "link", "del", f"rcjv{n}", check=False)
        sh("ip", "link", "del", BRIDGE, check=False)
        while sh("iptables", "-D", *FORWARD_RULE, check=False).returncode == 0:
            pass

    def cut(self, a, b):
        """Drops every packet between nodes a and b, both ways."""
        for x, y in ((a, b), (b, a)):
            sh(*in_ns(x, "iptables", "-A", "INPUT", "-s", ip_of(y), "-j", "DROP"))
            sh(*in_ns(x, "iptables", "-A", "OUTPUT", "-d", ip_of(y), "-j", "DROP"))

    def partition(self, groups):
        """Nodes talk only within their group (clients still reach all)."""
        for i, g in enumerate(groups):
            for h in groups[i + 1:]:
                for a in g:
                    for b in h:
                        self.cut(a, b)

    def heal(self):
        for n in self.nodes:
            sh(*in_ns(n, "iptables", "-F"), check=False)

    def slow(self, rate_kbit, loss_pct):
        """Slow, lossy links. This kernel has no netem, so: a token bucket
        on each node's outgoing link (a thin pipe: queueing delay grows with
        traffic) and random drops of incoming packets."""
        for n in self.nodes:
            sh(*in_ns(n, "tc", "qdisc", "replace", "dev", "eth0", "root", "tbf",
                      "rate", f"{rate_kbit}kbit", "burst", "16kb", "latency", "300ms"))
            sh(*in_ns(n, "iptables", "-A", "INPUT", "-m", "statistic", "--mode", "random",
                      "--probability", str(loss_pct / 100), "-j", "DROP"))

    def fast(self):
        for n in self.nodes:
            sh(*in_ns(n, "tc", "qdisc", "del", "dev", "eth0", "root"), check=False)
        self.heal()
