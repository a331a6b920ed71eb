"""Dashboards and alert rules for litellm-rust, generated as code."""
