"""The Cython bindings of the C++ core (include/lockstep): thin, one module per component,
never importing the typed API above them (lockstep.core, lockstep.data, lockstep.backtest)."""
