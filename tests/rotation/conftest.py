"""Rotation fixtures: the private moto world (see world.py)."""

from tests.rotation.world import rot_env, rotation_moto

__all__ = ["rot_env", "rotation_moto"]
