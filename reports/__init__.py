"""The report over a loaded PostHog dataset: `sql/` models run on the DuckDB file (models.py) and drawn as a
self-contained HTML page (html_page.py). Its own package, apart from the loading (`pipelines/`): it reads what a
run wrote and nothing else, so `posthog-pipeline report`, the demo and anyone's notebook share it."""
