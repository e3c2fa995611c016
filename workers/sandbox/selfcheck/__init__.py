"""The sandbox's self-check script (workers.selfcheck_run imports nothing from here: the
warm parent imports `evaluation_script` from this folder as it would a host's script)."""
