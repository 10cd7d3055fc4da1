"""Judge definitions shipped with cosa-eval (importable so a wheel carries them)."""
