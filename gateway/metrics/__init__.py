"""Metrics beside tickets: Prometheus series read for spikes, and our own /metrics.

`prometheus` reads `[[metrics]]` queries over HTTP, `aberrations` runs the seasonal
detector of `nlp.volume` on what comes back (`metric_spikes`), and `exporter` serves
supportgate's queue counts for Prometheus to scrape.

This package may import `nlp`, `storage` and `gateway.config`, nothing else of
`gateway`; of the gateway, only the command line (`gateway.cli`) imports it.
"""
