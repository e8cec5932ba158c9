"""Command-line interface (placeholder, filled below)."""


def main() -> None:
    pass
