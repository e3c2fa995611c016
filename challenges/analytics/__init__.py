"""What hosts learn about their challenge (reads only): per phase in phase.py, across
challenges for admins in overview.py, as CSV rows in export.py."""
