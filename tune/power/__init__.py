"""Host power: power models (watts vs utilisation) and drivers that switch hosts off and on."""

from .drivers import BMC, IpmitoolDriver, PowerDriver, SimPowerDriver, WolDriver, magic_packet, power_drivers
from .models import HP_ML110_G4, HP_ML110_G5, LinearPowerModel, PowerModel, TablePowerModel

__all__ = ["BMC", "HP_ML110_G4", "HP_ML110_G5", "IpmitoolDriver", "LinearPowerModel", "PowerDriver",
           "PowerModel", "SimPowerDriver", "TablePowerModel", "WolDriver", "magic_packet",
           "power_drivers"]
