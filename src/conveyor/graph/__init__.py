"""Graph traversal, shared by every executor: what runs next, branches, maps, on_failure."""
