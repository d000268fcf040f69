"""The market data recorder (`lockstep record`, docs/recorder.md): feeds received into raw
capture files with their history (capture.py), config (config.py), the feed kinds (moldudp64.py,
websocket.py), the run (run.py), its metrics (metrics.py) and the import of captures
(importer.py)."""
