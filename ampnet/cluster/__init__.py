"""Beyond one machine, on Ray: :mod:`ampnet.cluster.connect` (joining or starting a
cluster, checking shared storage), :mod:`ampnet.cluster.render` (one task per input
and model), :mod:`ampnet.cluster.train` (one model per capture of a set) and
:mod:`ampnet.cluster.sweep` (settings for one capture on Ray Tune).

Ray is the optional ``cluster`` extra; only ``--cluster`` imports this package.
"""
