"""The console's screens: risk acknowledgments, decision dialogs, and information views."""
