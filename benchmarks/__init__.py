"""Side-by-side benchmarks of the PostHog connector against its peers, on a local fake PostHog.

Entry point: `python -m benchmarks` (or `./dev bench`). See benchmarks/RESULTS.md for the last full run.
"""
