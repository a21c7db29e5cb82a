"""Low-level operations shared by every network in the package."""
