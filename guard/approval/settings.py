"""What the desk takes from the config, and what acknowledgments bind to."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from guard.config import ApprovalSection, Config, OperatorsSection, RiskSection


@dataclass(frozen=True, slots=True)
class DeskSettings:
    """The parts of the config the desk needs, and what acknowledgments bind to."""

    approval: ApprovalSection
    risk: RiskSection
    """The config's risk limits; the state folds run-time changes on top of them."""
    operators: OperatorsSection
    starting_balance: Decimal
    config_hash: str
    model_hash: str = ""
    novelty_policy: str = "confirm"

    @classmethod
    def from_config(cls, config: Config, model_hash: str = "") -> DeskSettings:
        """The desk's settings from a whole config (and the loaded model's hash)."""
        return cls(
            approval=config.approval,
            risk=config.risk,
            operators=config.operators,
            starting_balance=config.paper.starting_balance,
            config_hash=config.hash(),
            model_hash=model_hash,
            novelty_policy=config.model.novelty_policy,
        )
