"""HTTP: Prometheus metrics (and, later, the REST/JSON shim)."""
