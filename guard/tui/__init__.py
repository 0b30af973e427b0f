"""The operator console: a Textual client of the daemon's control API (`guard tui`, and what `guard up` attaches).

Textual reads its frame rate from TEXTUAL_FPS once, when it is first imported, and this package
is imported before Textual in both entry points. At the default 60 its frame timer, after a busy
frame, sleeps up to two frames (33 ms) before drawing the next one; at 120 a key press reaches the
screen within the 50 ms the console promises, at no cost when nothing changes. An explicit
TEXTUAL_FPS still wins.
"""

import os

os.environ.setdefault("TEXTUAL_FPS", "120")
