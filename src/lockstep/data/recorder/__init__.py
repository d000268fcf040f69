"""The market data recorder (`lockstep record`, docs/recorder.md): feeds received into raw
capture files (docs/raw-format.md) with their history (capture.py), its config (config.py), the
feed kinds (moldudp64.py, websocket.py), the run (run.py) and its metrics (metrics.py). Captures
are imported by lockstep.data.importers.capture (MoldUDP64) and .binance (WebSocket)."""
