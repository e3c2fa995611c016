"""A challenge's forum: who may read and write it (access), what changes it (services),
what reads it (selectors) and how posts render (markdown)."""
