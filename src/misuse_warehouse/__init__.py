"""Misuse Warehouse: feeds in, quality gates, a star schema and KPIs out."""

__version__ = "0.1.0"
