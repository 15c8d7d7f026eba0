"""The 2020 proof of concept's module path of `SimulatorInstrument` (defined in ``_instrument``).

``instrument`` records of 2020 repositories may name ``spherex.instrument.simulator_instrument``; new
records name the defining module.
"""

from ._instrument import SimulatorInstrument

__all__ = ["SimulatorInstrument"]
