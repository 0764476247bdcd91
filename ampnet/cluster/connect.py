"""Joining a Ray cluster (or starting one here), and checking that every node sees the
files at the same paths.

ampnet assumes shared storage (NFS, a cluster file system, one machine): workers read
inputs and models and write outputs at the paths the command line gave. That is
checked up front on every node, so a missing mount is one clear error instead of a
failure per file.
"""

import logging
import os
import secrets
import socket
from pathlib import Path

from ampnet.errors import AmpnetError

INSTALL_HINT = "install the cluster extra: pip install -c constraints.txt 'ampnet[cluster]'"


def import_ray():
    try:
        import ray
    except ImportError:
        raise AmpnetError(f"--cluster needs Ray: {INSTALL_HINT}") from None
    return ray


class Cluster:
    """A connection to a Ray cluster for the length of a ``with`` block: ``address`` a
    cluster's (``host:port`` or ``ray://host:port``), ``auto`` (the one this machine
    belongs to) or ``local`` (a cluster started here with ``cpus`` CPUs, default all,
    and stopped at the end)."""

    def __init__(self, address, cpus=None):
        self.address, self.cpus = address, cpus
        self.ray = import_ray()

    def __enter__(self):
        ray = self.ray
        options = {"logging_level": logging.WARNING, "log_to_driver": False,
                   "configure_logging": True}
        try:
            if self.address == "local":
                ray.init(address="local", num_cpus=self.cpus, include_dashboard=False, **options)
            else:
                ray.init(address=self.address, **options)
        except (ConnectionError, RuntimeError, ValueError) as err:
            where = "a running cluster" if self.address == "auto" else self.address
            raise AmpnetError(f"--cluster {self.address}: cannot connect to {where} ({err}); "
                              "start one with 'ray start --head' or use --cluster local") from None
        return self

    def __exit__(self, *exc):
        self.ray.shutdown()
        return False

    def nodes(self):
        """The alive nodes: ``[(node id, address)]``."""
        return [(n["NodeID"], n.get("NodeManagerAddress", "?")) for n in self.ray.nodes()
                if n.get("Alive")]

    def check_shared_storage(self, read_paths, write_folders):
        """Every node must see ``read_paths`` (files) and write into ``write_folders`` and
        see what this machine wrote there; raises :class:`AmpnetError` naming the first
        node and path that fail."""
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        ray = self.ray
        token = secrets.token_hex(8)
        probes = []
        for folder in sorted({Path(f).resolve() for f in write_folders}):
            folder.mkdir(parents=True, exist_ok=True)
            probe = folder / f".ampnet-storage-check-{token}"
            probe.write_text(token)
            probes.append(probe)
        try:
            check = ray.remote(num_cpus=0)(_can_see)
            refs = [(address, check.options(scheduling_strategy=NodeAffinitySchedulingStrategy(
                node, soft=False)).remote(sorted({str(Path(p).resolve()) for p in read_paths}),
                                          [str(p) for p in probes], token))
                    for node, address in self.nodes()]
            for address, ref in refs:
                host, problem = ray.get(ref, timeout=120)
                if problem:
                    raise AmpnetError(
                        f"--cluster: node {address} ({host}) {problem}: every node must see the "
                        "inputs, the models and the output folder at the same paths (shared "
                        "storage, e.g. an NFS mount); mount them there or render with --jobs")
        finally:
            for probe in probes:
                probe.unlink(missing_ok=True)


def _can_see(read_paths, probes, token):
    """On one node: the first problem with the paths, or None."""
    for path in read_paths:
        if not os.access(path, os.R_OK):
            return socket.gethostname(), f"cannot read {path}"
    for probe in map(Path, probes):
        try:
            seen = probe.read_text()
        except OSError:
            seen = None
        if seen != token:
            return socket.gethostname(), f"does not see {probe.parent} as this machine does"
        mine = probe.with_name(probe.name + f".{os.getpid()}")
        try:
            mine.write_text(token)
            mine.unlink()
        except OSError as err:
            return socket.gethostname(), f"cannot write in {probe.parent} ({err.strerror})"
    return socket.gethostname(), None
