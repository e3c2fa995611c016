"""Everything that writes goes through a service: keyword-only `<entity>_<action>` functions."""
