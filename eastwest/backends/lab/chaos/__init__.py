"""Chaos Mesh faults executed by the lab itself, on this kernel (see the README, "Faults in the lab").

- ``spec.py``: PodChaos, NetworkChaos and HTTPChaos documents read with Chaos Mesh's meaning;
  what the lab cannot honour is refused by name.
- ``select.py``: selectors, ``mode`` and ``value``: which pods a fault acts on.
- ``controller.py``: the faults in place, their records (Chaos Mesh's conditions), ``duration``.
- ``podfaults.py``: pod-kill, pod-failure, container-kill, and the kubelet's answer to them.
- ``netfaults.py``: partition, delay, loss, duplicate, corrupt, bandwidth (``nft.py``: nf_tables
  through pyroute2; ``qdisc.py``: tbf/htb; ``delayer.py``: the nfnetlink_queue delayer process).
- ``httpfaults.py``: HTTPChaos abort and delay as Envoy's fault filter on the sidecar's inbound listener.

This package's ``__init__`` imports nothing, so the client side may read ``spec.FAULTS`` cheaply.
"""
