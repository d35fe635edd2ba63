"""The sopdsl engine: runs compiled plans on a virtual clock (simulation) or a real one (live)."""
