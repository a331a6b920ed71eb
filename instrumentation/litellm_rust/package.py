# The litellm versions whose hot paths litellm-rust reproduces exactly (the `instruments` extra).
_instruments = ("litellm >= 1.110.2, < 1.111",)
