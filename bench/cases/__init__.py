"""One module per measured case; each ``measure(backend)`` adds its rows to the backend."""
