"""Replay: history through the whole pipeline, with a scripted operator, as fast as it can."""
