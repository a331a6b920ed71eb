# The litellm releases some component is verified on (the `instruments` extra; docs/known-limits.md: which ones on each).
_instruments = ("litellm >= 1.109.3, < 1.111",)
