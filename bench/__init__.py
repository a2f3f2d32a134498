"""eboard benchmarks: each ``bench_*.py`` here is a script; ``python -m bench`` runs them."""
