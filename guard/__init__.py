"""guard: a human-in-the-loop trade approval daemon for crypto paper trading."""
