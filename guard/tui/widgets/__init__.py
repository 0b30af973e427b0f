"""The main screen's widgets: banner, proposal queue, decision card, positions, prices, log."""
