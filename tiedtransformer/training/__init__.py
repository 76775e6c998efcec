"""Training around the network: the LightningModule (``module.py``), its schedules and evaluation,
the run directory (``runs.py``), precision, checkpoint averaging, distributed helpers and sweeps."""
