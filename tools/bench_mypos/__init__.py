"""tools/bench: the myPOS webhook against /web/health, and old against new commit, in one run."""
