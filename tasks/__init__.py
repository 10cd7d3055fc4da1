"""lm_eval task YAMLs shipped with cosa-eval (importable so a wheel carries them)."""
