"""Training around the network: the LightningModule (``module.py``), its schedules, precision,
checkpoint averaging, distributed helpers and sweeps. What a run leaves on disk: :mod:`tiedtransformer.run`."""
