"""Market specifications: the one place guard builds a `MarketSpec`.

- `builtin`: guard's built-in specs, only for the symbols they describe (BTC, ETH and SOL against
  USDT, perpetual and spot), and its maintenance-bracket tables.
- `venue`: from a ccxt exchange's markets and leverage tiers (imported on its own: it needs ccxt).
- `files`: the spec file that travels beside a history file, and finding the spec for a replay.
"""

from guard.markets.builtin import builtin_spec, builtin_tiers, default_spec, tiers_are_guessed
from guard.markets.files import read_specs, resolve_specs, spec_for_history, spec_path, write_specs
from guard.markets.record import SpecRecord

__all__ = [
    "SpecRecord",
    "builtin_spec",
    "builtin_tiers",
    "default_spec",
    "read_specs",
    "resolve_specs",
    "spec_for_history",
    "spec_path",
    "tiers_are_guessed",
    "write_specs",
]
