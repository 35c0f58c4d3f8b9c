"""nomad_ctr: a typed Python client for containerd, and a Nomad task driver built on it."""

__version__ = "0.1.0"
