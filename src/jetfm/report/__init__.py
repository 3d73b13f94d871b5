"""Human-facing output: terminal summaries."""
