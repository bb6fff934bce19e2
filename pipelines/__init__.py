"""Runnable pipelines and the `posthog-pipeline` command line."""
