"""The examples of the repository's examples/ folder, installed with the package so that configs
can name them by import path (lockstep.examples.market_maker:MarketMaker). Their sources live in
examples/; the build copies (and compiles) them here."""
