"""MuJoCo simulation of the cube-stacking task: the world, its Cartesian controller, the scripted expert."""

from positronic.sim.expert import StackingExpert
from positronic.sim.world import UnreachablePoseError, World

__all__ = ['StackingExpert', 'UnreachablePoseError', 'World']
