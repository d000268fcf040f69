"""Pure-Python reference implementations: slow, small and obviously correct.

Each mirrors a compiled component's Python API and results exactly, so tests can run the same
operations through both and demand identical answers.
"""
