"""Beyond one machine, on Ray: :mod:`ampnet.cluster.connect` (joining or starting a
cluster, checking shared storage), :mod:`ampnet.cluster.render` (one task per input and
model), :mod:`ampnet.cluster.train` (a model per capture; sweeps with Ray Tune).

Ray is the optional ``cluster`` extra; nothing else in ampnet imports this package.
"""
